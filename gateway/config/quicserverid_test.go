package config

import (
	"strings"
	"testing"
)

// The QUIC server ID comes from quic_server_id or else the environment;
// a bad one is an error naming where it came from (file, line and key).
func TestParse_QUICServerID(t *testing.T) {
	for _, tc := range []struct {
		name, key, env, want, err string
	}{
		{name: "none"},
		{name: "key", key: "0xa1b2c3d4e5f65890", want: "0xa1b2c3d4e5f65890"},
		{name: "env", env: "0x0000000000000002", want: "0x0000000000000002"},
		{name: "key wins", key: "0x0000000000000001", env: "0x0000000000000002", want: "0x0000000000000001"},
		{name: "uppercase", key: "0xA1B2C3D4E5F65890", err: "quic_server_id: \"0xA1B2C3D4E5F65890\": letters must be lowercase"},
		{name: "short", key: "0xa1b2", err: "quic_server_id: \"0xa1b2\": 4 hexadecimal digits, want 16"},
		{name: "no 0x", key: "a1b2c3d4e5f65890", err: "quic_server_id: \"a1b2c3d4e5f65890\": want 0x"},
		{name: "bad env", env: "42", err: "quic_server_id (from SEKISHO_QUIC_SERVER_ID): \"42\": want 0x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(QUICServerIDEnv, tc.env)
			yaml := good
			if tc.key != "" {
				yaml += "quic_server_id: \"" + tc.key + "\"\n"
			}
			c, err := Parse("cfg.yaml", []byte(yaml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				if tc.key != "" && !strings.Contains(err.Error(), "cfg.yaml:") {
					t.Errorf("err = %v, want the file and line", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			id, ok, _ := c.ServerID()
			if got := map[bool]string{true: id.String()}[ok]; got != tc.want {
				t.Errorf("server ID %q, want %q", got, tc.want)
			}
		})
	}
}

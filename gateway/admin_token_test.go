package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"

	"github.com/sekisho/sekisho/gateway/config"
)

// adminStatus is the status of GET url with the given Authorization header
// ("" sends none).
func adminStatus(t *testing.T, url, authorization string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Without token_file, the admin listener takes its token from
// SEKISHO_ADMIN_TOKEN and refuses every request without it (a prefix of
// it, an empty one); token_file, when set, wins over the variable.
func TestAdmin_TokenFromEnvironment(t *testing.T) {
	backend, _ := app(t)
	t.Setenv(config.AdminTokenEnv, "from-env")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, admin, good, bad string
	}{
		{"env", `admin: {address: "127.0.0.1:0"}`, "from-env", "from-file"},
		{"file over env", `admin: {address: "127.0.0.1:0", token_file: "` + tokenFile + `"}`, "from-file", "from-env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, _, _, _ := runGateway(t, h3GatewayYAML(backend)+tc.admin+"\n", zerolog.Nop())
			base := "http://" + g.AdminAddr().String()
			for _, c := range []struct {
				auth string
				want int
			}{
				{"", http.StatusUnauthorized},
				{"Bearer ", http.StatusUnauthorized},
				{"Bearer " + tc.bad, http.StatusUnauthorized},
				{"Bearer " + tc.good[:len(tc.good)-1], http.StatusUnauthorized},
				{"Bearer " + tc.good + "x", http.StatusUnauthorized},
				{"Bearer " + tc.good, http.StatusOK},
				{basicAuth("admin", tc.good), http.StatusOK},
				{basicAuth("admin", ""), http.StatusUnauthorized},
			} {
				if got := adminStatus(t, base+"/metrics", c.auth); got != c.want {
					t.Errorf("/metrics with Authorization %q: %d, want %d", c.auth, got, c.want)
				}
			}
			if got := adminStatus(t, base+"/healthz", ""); got != http.StatusOK {
				t.Errorf("/healthz without a token: %d, want 200 (probes carry none)", got)
			}
		})
	}
}

func basicAuth(user, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

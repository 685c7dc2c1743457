package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"github.com/sekisho/sekisho/gateway/config"
	"github.com/sekisho/sekisho/gateway/quiclb"
)

// tf is the Terraform in deploy/aws, parsed with HCL (no terraform binary
// or provider needed): blocks by "type.name" and the locals.
type tf struct {
	resources map[string]*hclsyntax.Body
	variables map[string]*hclsyntax.Body
	locals    map[string]hcl.Expression
}

func loadTF(t *testing.T) *tf {
	t.Helper()
	files, _ := filepath.Glob("aws/*.tf")
	if len(files) == 0 {
		t.Fatal("no Terraform files in deploy/aws")
	}
	p := hclparse.NewParser()
	m := &tf{resources: map[string]*hclsyntax.Body{}, variables: map[string]*hclsyntax.Body{}, locals: map[string]hcl.Expression{}}
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		if diags.HasErrors() {
			t.Fatalf("%s: %v", f, diags)
		}
		for _, b := range file.Body.(*hclsyntax.Body).Blocks {
			switch b.Type {
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = b.Body
			case "variable":
				m.variables[b.Labels[0]] = b.Body
			case "locals":
				for k, a := range b.Body.Attributes {
					m.locals[k] = a.Expr
				}
			}
		}
	}
	return m
}

func (m *tf) resource(t *testing.T, addr string) *hclsyntax.Body {
	t.Helper()
	b, ok := m.resources[addr]
	if !ok {
		t.Fatalf("no resource %s", addr)
	}
	return b
}

// refs lists the "type.name" of the resources an expression refers to,
// and "local.x" for locals, followed through the locals.
func (m *tf) refs(e hcl.Expression) []string {
	var out []string
	for _, tr := range e.Variables() {
		if len(tr) < 2 {
			continue
		}
		attr, ok := tr[1].(hcl.TraverseAttr)
		if !ok {
			continue
		}
		if tr.RootName() == "local" {
			out = append(out, m.refs(m.locals[attr.Name])...)
			continue
		}
		out = append(out, tr.RootName()+"."+attr.Name)
	}
	return out
}

// evalCtx evaluates what needs no provider: variables (defaults, or the
// given values), locals built from them, and Terraform's plain functions.
func (m *tf) evalCtx(t *testing.T, vars map[string]cty.Value) *hcl.EvalContext {
	t.Helper()
	v := map[string]cty.Value{}
	for name, body := range m.variables {
		if val, ok := vars[name]; ok {
			v[name] = val
		} else if d, ok := body.Attributes["default"]; ok {
			val, diags := d.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("variable %s default: %v", name, diags)
			}
			v[name] = val
		}
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(v)},
		Functions: map[string]function.Function{
			"concat": stdlib.ConcatFunc, "setproduct": stdlib.SetProductFunc, "contains": stdlib.ContainsFunc,
			"length": stdlib.LengthFunc, "join": stdlib.JoinFunc, "slice": stdlib.SliceFunc,
			"toset": stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)), "tostring": stdlib.MakeToFunc(cty.String),
			"tonumber": stdlib.MakeToFunc(cty.Number),
		},
	}
	// Locals that depend only on variables and other such locals.
	locals := map[string]cty.Value{}
	for range len(m.locals) {
		ctx.Variables["local"] = cty.ObjectVal(locals)
		for name, e := range m.locals {
			if _, done := locals[name]; done {
				continue
			}
			if val, diags := e.Value(ctx); !diags.HasErrors() && val.IsWhollyKnown() {
				locals[name] = val
			}
		}
	}
	ctx.Variables["local"] = cty.ObjectVal(locals)
	return ctx
}

func attrValue(t *testing.T, b *hclsyntax.Body, name string, ctx *hcl.EvalContext) cty.Value {
	t.Helper()
	a, ok := b.Attributes[name]
	if !ok {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", name, diags)
	}
	return v
}

func block(b *hclsyntax.Body, typ string) *hclsyntax.Body {
	for _, blk := range b.Blocks {
		if blk.Type == typ {
			return blk.Body
		}
	}
	return nil
}

var variants = map[string]map[string]cty.Value{
	"nlb":          {"load_balancer": cty.StringVal("nlb")},
	"nlb-quic":     {"load_balancer": cty.StringVal("nlb"), "quic_listener": cty.True},
	"nlb-no-http3": {"load_balancer": cty.StringVal("nlb"), "http3": cty.False},
	"alb":          {"load_balancer": cty.StringVal("alb")},
}

func TestAWS_TargetGroupsAndListeners(t *testing.T) {
	m := loadTF(t)
	ctx := m.evalCtx(t, variants["nlb"])
	// PROXY v2 where the NLB's own address is the peer; where AWS keeps the
	// client's (TCP_UDP, TCP_QUIC), the client is the peer and no header
	// comes (sekisho would refuse one from outside the VPC).
	for _, c := range []struct {
		variant, tg, protocol string
		proxy                 bool
	}{
		{"nlb", "aws_lb_target_group.nlb_http", "TCP", true},
		{"nlb", "aws_lb_target_group.nlb_https", "TCP_UDP", false},
		{"nlb-no-http3", "aws_lb_target_group.nlb_https", "TCP", true},
		{"nlb-quic", "aws_lb_target_group.nlb_http", "TCP", true},
		{"nlb-quic", "aws_lb_target_group.nlb_https", "TCP_QUIC", false},
	} {
		ctx := m.evalCtx(t, variants[c.variant])
		b := m.resource(t, c.tg)
		if p := attrValue(t, b, "protocol", ctx); p.AsString() != c.protocol {
			t.Errorf("%s: %s protocol %s, want %s", c.variant, c.tg, p.AsString(), c.protocol)
		}
		if v := attrValue(t, b, "proxy_protocol_v2", ctx); !v.RawEquals(cty.BoolVal(c.proxy)) {
			t.Errorf("%s: %s proxy_protocol_v2 = %#v, want %v", c.variant, c.tg, v, c.proxy)
		}
		if v := attrValue(t, b, "preserve_client_ip", ctx); c.proxy && !v.RawEquals(cty.False) {
			t.Errorf("%s: %s sends PROXY v2 but keeps the client's address (preserve_client_ip %#v): the peer is outside the VPC", c.variant, c.tg, v)
		}
		if l := "aws_lb_listener." + strings.TrimPrefix(c.tg, "aws_lb_target_group."); attrValue(t, m.resource(t, l), "protocol", ctx).AsString() != c.protocol {
			t.Errorf("%s: %s is not %s", c.variant, l, c.protocol)
		}
	}
	for _, tg := range []string{"aws_lb_target_group.nlb_http", "aws_lb_target_group.nlb_https", "aws_lb_target_group.alb"} {
		hc := block(m.resource(t, tg), "health_check")
		if hc == nil || attrValue(t, hc, "path", ctx).AsString() != "/readyz" {
			t.Errorf("%s: health check path is not /readyz", tg)
		}
	}
	for listener, want := range map[string]string{
		"aws_lb_listener.nlb_http":  "aws_lb_target_group.nlb_http",
		"aws_lb_listener.nlb_https": "aws_lb_target_group.nlb_https",
		"aws_lb_listener.alb_https": "aws_lb_target_group.alb",
	} {
		act := block(m.resource(t, listener), "default_action")
		if act == nil || !slices.Contains(m.refs(act.Attributes["target_group_arn"].Expr), want) {
			t.Errorf("%s does not forward to %s", listener, want)
		}
		if !slices.Contains(m.refs(m.resource(t, listener).Attributes["load_balancer_arn"].Expr), "aws_lb.main") {
			t.Errorf("%s is not on aws_lb.main", listener)
		}
	}
	for lb, want := range map[string][2]string{"nlb": {"80", "443"}, "alb": {"80", "443"}} {
		ctx := m.evalCtx(t, variants[lb])
		for _, l := range []string{"aws_lb_listener." + lb + "_http", "aws_lb_listener." + lb + "_https"} {
			port := attrValue(t, m.resource(t, l), "port", ctx).AsBigFloat().String()
			if !slices.Contains(want[:], port) {
				t.Errorf("%s port %s", l, port)
			}
		}
	}
}

func TestAWS_AutoScalingAcrossTwoAZs(t *testing.T) {
	m := loadTF(t)
	asg := m.resource(t, "aws_autoscaling_group.sekisho")
	// local.azs takes var.azs when it names two (else a data source's).
	ctx := m.evalCtx(t, map[string]cty.Value{"azs": cty.ListVal([]cty.Value{cty.StringVal("eu-west-1a"), cty.StringVal("eu-west-1b")})})
	tgs := m.refs(asg.Attributes["target_group_arns"].Expr)
	for _, tg := range []string{"aws_lb_target_group.nlb_http", "aws_lb_target_group.nlb_https", "aws_lb_target_group.alb"} {
		if !slices.Contains(tgs, tg) {
			t.Errorf("the ASG is not attached to %s (target_group_arns refers to %v)", tg, tgs)
		}
	}
	if v := attrValue(t, asg, "health_check_type", ctx); v.AsString() != "ELB" {
		t.Errorf("health_check_type %s: want ELB, so an instance failing /readyz is replaced", v.AsString())
	}
	if v := attrValue(t, asg, "min_size", ctx); v.LessThan(cty.NumberIntVal(2)).True() {
		t.Errorf("min_size %s: want one replica per AZ at least", v.AsBigFloat())
	}
	if !slices.Equal(m.refs(asg.Attributes["vpc_zone_identifier"].Expr), []string{"aws_subnet.private"}) {
		t.Errorf("the ASG is not in the private subnets")
	}
	for _, sn := range []string{"aws_subnet.private", "aws_subnet.public"} {
		b := m.resource(t, sn)
		if attrValue(t, b, "count", ctx).AsBigFloat().String() != "2" {
			t.Errorf("%s: want two subnets", sn)
		}
		az := b.Attributes["availability_zone"].Expr
		ctx.Variables["count"] = cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(0)})
		a0, _ := az.Value(ctx)
		ctx.Variables["count"] = cty.ObjectVal(map[string]cty.Value{"index": cty.NumberIntVal(1)})
		a1, _ := az.Value(ctx)
		if !a0.IsKnown() || !a1.IsKnown() || a0.RawEquals(a1) {
			t.Errorf("%s: availability zones %#v and %#v: want two different AZs", sn, a0, a1)
		}
	}
}

// Every ingress rule, evaluated for each variant: nothing reaches the
// admin port (9901), and nothing but the load balancer's ports is open to
// the world.
func TestAWS_SecurityGroups(t *testing.T) {
	m := loadTF(t)
	for name, vars := range variants {
		ctx := m.evalCtx(t, vars)
		for addr, b := range m.resources {
			if !strings.HasPrefix(addr, "aws_vpc_security_group_ingress_rule.") {
				if strings.HasPrefix(addr, "aws_security_group.") && block(b, "ingress") != nil || strings.HasPrefix(addr, "aws_security_group_rule.") {
					t.Errorf("%s: write ingress as aws_vpc_security_group_ingress_rule, which this test reads", addr)
				}
				continue
			}
			for _, each := range forEach(t, b, ctx) {
				ctx.Variables["each"] = cty.ObjectVal(map[string]cty.Value{"value": each})
				from := attrValue(t, b, "from_port", ctx)
				to := attrValue(t, b, "to_port", ctx)
				cidr := attrValue(t, b, "cidr_ipv4", ctx)
				f, tt := int64(0), int64(65535) // ip_protocol "-1": every port
				if !from.IsNull() && !to.IsNull() {
					f, _ = from.AsBigFloat().Int64()
					tt, _ = to.AsBigFloat().Int64()
				}
				if f <= 9901 && 9901 <= tt {
					t.Errorf("%s: %s opens %d-%d, which covers the admin port 9901", name, addr, f, tt)
				}
				if !cidr.IsNull() && cidr.AsString() == "0.0.0.0/0" && addr != "aws_vpc_security_group_ingress_rule.lb_clients" &&
					addr != "aws_vpc_security_group_ingress_rule.instances_quic" && addr != "aws_vpc_security_group_ingress_rule.instances_clients" {
					t.Errorf("%s: %s is open to 0.0.0.0/0", name, addr)
				}
				if addr == "aws_vpc_security_group_ingress_rule.lb_clients" && f != 80 && f != 443 {
					t.Errorf("%s: the load balancer is open to clients on %d", name, f)
				}
			}
		}
	}
	r := m.resource(t, "aws_vpc_security_group_ingress_rule.redis_from_instances")
	if !slices.Contains(m.refs(r.Attributes["referenced_security_group_id"].Expr), "aws_security_group.instances") {
		t.Error("Redis must be reachable from the instances' security group only")
	}
}

// forEach returns the values a resource's for_each gives each.value, or
// one null when it has none.
func forEach(t *testing.T, b *hclsyntax.Body, ctx *hcl.EvalContext) []cty.Value {
	t.Helper()
	a, ok := b.Attributes["for_each"]
	if !ok {
		return []cty.Value{cty.NullVal(cty.DynamicPseudoType)}
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		t.Fatalf("for_each: %v", diags)
	}
	var out []cty.Value
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e)
	}
	return out
}

func TestAWS_ElastiCache(t *testing.T) {
	m := loadTF(t)
	rg := m.resource(t, "aws_elasticache_replication_group.redis")
	ctx := m.evalCtx(t, variants["nlb"])
	for _, a := range []string{"transit_encryption_enabled", "at_rest_encryption_enabled", "multi_az_enabled", "automatic_failover_enabled"} {
		if !attrValue(t, rg, a, ctx).RawEquals(cty.True) {
			t.Errorf("ElastiCache %s is not true", a)
		}
	}
	if n := attrValue(t, rg, "num_cache_clusters", ctx); n.LessThan(cty.NumberIntVal(2)).True() {
		t.Errorf("num_cache_clusters %s: want a replica in the other AZ", n.AsBigFloat())
	}
	if !slices.Contains(m.refs(rg.Attributes["auth_token"].Expr), "random_password.redis") {
		t.Error("ElastiCache has no generated auth token")
	}
	if !slices.Contains(m.refs(rg.Attributes["security_group_ids"].Expr), "aws_security_group.redis") {
		t.Error("ElastiCache is not in its own security group")
	}
}

// The user data's configs, rendered as Terraform would, are valid sekisho
// configs with the client trusted from the VPC only, and the script is
// valid bash that installs the unit from deploy/systemd.
func TestAWS_UserDataConfigs(t *testing.T) {
	vars := map[string]cty.Value{
		"vpc_cidr":    cty.StringVal("10.0.0.0/16"),
		"app_servers": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("shop-a"), "address": cty.StringVal("10.0.11.10:8080")})}),
		"domains":     cty.ListVal([]cty.Value{cty.StringVal("shop.example.com")}),
		"acme_email":  cty.StringVal("ops@example.com"),
		"redis_host":  cty.StringVal("master.sekisho-redis.abc123.euw1.cache.amazonaws.com"),
	}
	dir := t.TempDir()
	// password_file and token_file name systemd's credentials folder.
	for _, f := range []string{"redis_password", "admin_token"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600)
	}
	for _, variant := range []string{"nlb", "nlb-proxy-443", "alb"} {
		lb := variant[:3]
		vars["https_proxy"] = cty.BoolVal(variant == "nlb-proxy-443")
		text := render(t, "aws/templates/sekisho-"+lb+".yaml.tftpl", vars)
		text = strings.ReplaceAll(text, "/run/credentials/sekisho.service", dir)
		c, err := config.Parse(lb+".yaml", []byte(text))
		if err != nil {
			t.Fatalf("%s config:\n%v\n%s", variant, err, text)
		}
		f := c.Frontends[0]
		if f.MonitorURI != "/readyz" {
			t.Errorf("%s: monitor_uri %q: the load balancer checks /readyz on the traffic port", variant, f.MonitorURI)
		}
		if c.Admin == nil || !strings.HasPrefix(c.Admin.Address, "127.0.0.1:") {
			t.Errorf("%s: the admin listener is not on loopback", variant)
		}
		if c.Redis == nil || c.Redis.TLS == nil || c.Redis.Addresses[0] != "master.sekisho-redis.abc123.euw1.cache.amazonaws.com:6379" {
			t.Errorf("%s: redis %+v: want ElastiCache over TLS", variant, c.Redis)
		}
		switch lb {
		case "nlb":
			// PROXY from the VPC on 80, and on 443 when its target group
			// sends it; else the client is the peer. Port 80 takes the
			// 443 group's health checks, which then come with no header.
			for _, b := range f.Bind {
				wantProxy := !strings.HasSuffix(b.Address, ":443") || vars["https_proxy"].True()
				gotProxy := b.ProxyProtocol != nil && slices.Equal(b.ProxyProtocol.Trusted, []string{"10.0.0.0/16"})
				if gotProxy != wantProxy {
					t.Errorf("%s bind %s: PROXY from the VPC %v, want %v", variant, b.Address, gotProxy, wantProxy)
				}
				if optional := gotProxy && b.ProxyProtocol.Mode == "optional"; optional != (strings.HasSuffix(b.Address, ":80") && !vars["https_proxy"].True()) {
					t.Errorf("%s bind %s: PROXY mode %q", variant, b.Address, b.ProxyProtocol.Mode)
				}
			}
			if f.TLS == nil || f.TLS.ACME == nil || !f.HTTP3 {
				t.Errorf("nlb: want ACME certificates and HTTP/3")
			}
		case "alb":
			if f.ClientIP == nil || !slices.Equal(f.ClientIP.TrustedProxies, []string{"10.0.0.0/16"}) {
				t.Errorf("alb: X-Forwarded-For not trusted from the VPC only: %+v", f.ClientIP)
			}
		}
	}
	unitText, _ := os.ReadFile("systemd/sekisho.service")
	for _, quicTarget := range []string{"", "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/sekisho-tcp_quic443/0123456789abcdef"} {
		script := render(t, "aws/templates/user-data.sh.tftpl", map[string]cty.Value{
			"config": cty.StringVal("frontends: []\n"), "unit": cty.StringVal(string(unitText)),
			"sekisho_url": cty.StringVal("https://example.com/sekisho"), "sekisho_sha256": cty.StringVal(strings.Repeat("0", 64)),
			"redis_parameter": cty.StringVal("/sekisho/redis-auth-token"), "region": cty.StringVal("eu-west-1"),
			"quic_target": cty.StringVal(quicTarget),
		})
		path := filepath.Join(dir, "user-data.sh")
		os.WriteFile(path, []byte(script), 0o700)
		if out, err := exec.Command("bash", "-n", path).CombinedOutput(); err != nil {
			t.Fatalf("user data is not valid bash: %v\n%s", err, out)
		}
		want := []string{"ExecReload=/bin/kill -HUP $MAINPID", "sha256sum -c", "systemctl enable --now sekisho", "LoadCredential=redis_password:"}
		quic := []string{"Environment=SEKISHO_QUIC_SERVER_ID=$quic_server_id", "register-targets --region eu-west-1 --target-group-arn " + quicTarget,
			"QuicServerId=$quic_server_id", "deregister-targets", "systemctl enable --now sekisho-quic-target"}
		if quicTarget != "" {
			want = append(want, quic...)
			checkServerIDDerivation(t, script)
		}
		for _, w := range want {
			if !strings.Contains(script, w) {
				t.Errorf("user data (quic target %q) lacks %q", quicTarget, w)
			}
		}
		if quicTarget == "" && strings.Contains(script, "QuicServerId") {
			t.Error("user data registers a QUIC target without a TCP_QUIC listener")
		}
	}
}

// checkServerIDDerivation runs the user data's server ID line for an
// instance ID: the ID is what sekisho accepts and what AWS registers
// ("0x" and 16 lowercase hex digits), the first 8 bytes of the SHA-256 of
// the instance ID, and another for another instance.
func checkServerIDDerivation(t *testing.T, script string) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^quic_server_id=.*$`).FindString(script)
	if line == "" {
		t.Fatal("user data has no quic_server_id= line")
	}
	seen := map[string]bool{}
	for _, iid := range []string{"i-0123456789abcdef0", "i-0123456789abcdef1"} {
		out, err := exec.Command("bash", "-c", "instance_id="+iid+"\n"+line+"\nprintf %s \"$quic_server_id\"").Output()
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(iid))
		if want := "0x" + hex.EncodeToString(sum[:8]); string(out) != want {
			t.Errorf("server ID of %s: %q, want %q", iid, out, want)
		}
		if _, err := quiclb.ParseServerID(string(out)); err != nil {
			t.Errorf("sekisho refuses the derived server ID: %v", err)
		}
		seen[string(out)] = true
	}
	if len(seen) != 2 {
		t.Error("two instances got the same server ID")
	}
}

// The TCP_QUIC variant: the NLB has no security group (AWS forbids one
// with a QUIC listener), the Auto Scaling group leaves the TCP_QUIC target
// group to the instances, which may register in it and nothing else.
func TestAWS_QUICListener(t *testing.T) {
	m := loadTF(t)
	for variant, quic := range map[string]bool{"nlb": false, "nlb-quic": true} {
		ctx := m.evalCtx(t, variants[variant])
		ctx.Variables["aws_security_group"] = cty.ObjectVal(map[string]cty.Value{"lb": cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"id": cty.StringVal("sg-lb")})})})
		arn := func(s string) cty.Value {
			return cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"arn": cty.StringVal(s)})})
		}
		ctx.Variables["aws_lb_target_group"] = cty.ObjectVal(map[string]cty.Value{"nlb_http": arn("tg-80"), "nlb_https": arn("tg-443"), "alb": arn("tg-alb")})
		locals := ctx.Variables["local"].AsValueMap()
		for _, name := range []string{"target_group_arns", "quic_target_group"} {
			v, diags := m.locals[name].Value(ctx)
			if diags.HasErrors() {
				t.Fatalf("local.%s: %v", name, diags)
			}
			locals[name] = v
		}
		ctx.Variables["local"] = cty.ObjectVal(locals)
		var asg []string
		for it := locals["target_group_arns"].ElementIterator(); it.Next(); {
			_, v := it.Element()
			asg = append(asg, v.AsString())
		}
		if want := map[bool]string{false: "tg-80 tg-443", true: "tg-80"}[quic]; strings.Join(asg, " ") != want {
			t.Errorf("%s: the Auto Scaling group registers its instances in %v, want %s", variant, asg, want)
		}
		if got := locals["quic_target_group"].AsString(); got != map[bool]string{true: "tg-443"}[quic] {
			t.Errorf("%s: the instances register themselves in %q", variant, got)
		}
		if sg := attrValue(t, m.resource(t, "aws_lb.main"), "security_groups", ctx); sg.IsNull() != quic {
			t.Errorf("%s: the NLB's security groups: %#v", variant, sg)
		}
		if n := attrValue(t, m.resource(t, "aws_iam_role_policy.quic_target"), "count", ctx); n.RawEquals(cty.NumberIntVal(1)) != quic {
			t.Errorf("%s: the instances' right to register: count %#v", variant, n)
		}
	}
	policy := m.resource(t, "aws_iam_role_policy.quic_target").Attributes["policy"].Expr
	if !slices.Contains(m.refs(policy), "aws_lb_target_group.nlb_https") {
		t.Error("the instances may register in more than the TCP_QUIC target group")
	}
}

// render evaluates a Terraform template file as templatefile() does.
func render(t *testing.T, path string, vars map[string]cty.Value) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	v, diags := tmpl.Value(&hcl.EvalContext{Variables: vars, Functions: map[string]function.Function{"join": stdlib.JoinFunc}})
	if diags.HasErrors() {
		t.Fatalf("%s: %v", path, diags)
	}
	return v.AsString()
}

package challenge

import (
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"strconv"
	"time"
)

// powScript runs in the challenge page: it reads the token and difficulty
// from the page, finds n with SHA-256(token ":" n) starting with that many
// zero bits (its own SHA-256: crypto.subtle exists only in secure
// contexts, and a challenge may be served over plain HTTP), and sends the
// answer. It yields every 20,000 hashes so the page stays responsive. The
// script is constant, so the page's Content-Security-Policy names its hash.
const powScript = `(function(){
var K=[0x428a2f98,0x71374491,0xb5c0fbcf,0xe9b5dba5,0x3956c25b,0x59f111f1,0x923f82a4,0xab1c5ed5,0xd807aa98,0x12835b01,0x243185be,0x550c7dc3,0x72be5d74,0x80deb1fe,0x9bdc06a7,0xc19bf174,0xe49b69c1,0xefbe4786,0x0fc19dc6,0x240ca1cc,0x2de92c6f,0x4a7484aa,0x5cb0a9dc,0x76f988da,0x983e5152,0xa831c66d,0xb00327c8,0xbf597fc7,0xc6e00bf3,0xd5a79147,0x06ca6351,0x14292967,0x27b70a85,0x2e1b2138,0x4d2c6dfc,0x53380d13,0x650a7354,0x766a0abb,0x81c2c92e,0x92722c85,0xa2bfe8a1,0xa81a664b,0xc24b8b70,0xc76c51a3,0xd192e819,0xd6990624,0xf40e3585,0x106aa070,0x19a4c116,0x1e376c08,0x2748774c,0x34b0bcb5,0x391c0cb3,0x4ed8aa4a,0x5b9cca4f,0x682e6ff3,0x748f82ee,0x78a5636f,0x84c87814,0x8cc70208,0x90befffa,0xa4506ceb,0xbef9a3f7,0xc67178f2];
function sha256(s){
var i,j,n=s.length,m=[],W=[],H=[0x6a09e667,0xbb67ae85,0x3c6ef372,0xa54ff53a,0x510e527f,0x9b05688c,0x1f83d9ab,0x5be0cd19];
for(i=0;i<n;i++)m[i>>2]|=s.charCodeAt(i)<<(24-(i&3)*8);
m[n>>2]|=0x80<<(24-(n&3)*8);
var len=((n+8>>6)+1)*16;
for(i=0;i<len;i++)m[i]|=0;
m[len-1]=n*8;
for(i=0;i<len;i+=16){
var a=H[0],b=H[1],c=H[2],d=H[3],e=H[4],f=H[5],g=H[6],h=H[7];
for(j=0;j<64;j++){
if(j<16)W[j]=m[i+j];
else{var x=W[j-15],y=W[j-2];W[j]=((x>>>7|x<<25)^(x>>>18|x<<14)^(x>>>3))+W[j-16]+((y>>>17|y<<15)^(y>>>19|y<<13)^(y>>>10))+W[j-7]|0;}
var t1=h+((e>>>6|e<<26)^(e>>>11|e<<21)^(e>>>25|e<<7))+((e&f)^(~e&g))+K[j]+W[j]|0;
var t2=((a>>>2|a<<30)^(a>>>13|a<<19)^(a>>>22|a<<10))+((a&b)^(a&c)^(b&c))|0;
h=g;g=f;f=e;e=d+t1|0;d=c;c=b;b=a;a=t1+t2|0;}
H[0]=H[0]+a|0;H[1]=H[1]+b|0;H[2]=H[2]+c|0;H[3]=H[3]+d|0;H[4]=H[4]+e|0;H[5]=H[5]+f|0;H[6]=H[6]+g|0;H[7]=H[7]+h|0;}
return H;}
function zeros(H){for(var i=0,z=0;i<8;i++){if(H[i]!==0)return z+Math.clz32(H[i]);z+=32;}return z;}
var el=document.getElementById("sekisho-challenge"),t=el.getAttribute("data-token"),d=+el.getAttribute("data-difficulty"),r=el.getAttribute("data-return"),p=document.getElementById("sekisho-progress"),n=0;
function step(){for(var k=0;k<20000;k++,n++){if(zeros(sha256(t+":"+n))>=d){location.replace("` + VerifyPath + `?t="+encodeURIComponent(t)+"&n="+n+"&r="+encodeURIComponent(r));return;}}
p.textContent="Checking your browser\u2026 "+n+" tries";setTimeout(step,0);}
p.textContent="Checking your browser\u2026";setTimeout(step,0);
})();`

// scriptHash is powScript's CSP hash.
var scriptHash = func() string {
	sum := sha256.Sum256([]byte(powScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var page = template.Must(template.New("challenge").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex"><title>Checking your browser</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:4em auto;padding:0 1em;color:#222}</style></head>
<body><h1>One moment</h1>
<p id="sekisho-challenge" data-token="{{.Token}}" data-difficulty="{{.Difficulty}}" data-return="{{.Return}}">This site checks that its visitors are browsers before letting them in.</p>
<p id="sekisho-progress"></p>
<noscript><p>This check needs JavaScript: please turn it on for this site and reload the page. It runs once, takes a moment, and lets you in for {{.TTL}}. Nothing is sent to anyone else.</p></noscript>
<script>{{.Script}}</script>
</body></html>
`))

// writePage writes the challenge page for token, as 403: a client that does
// not run it has not been let in, and nothing should cache or index it.
func writePage(w http.ResponseWriter, token string, difficulty int, back string, ttl time.Duration) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+scriptHash+"; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Robots-Tag", "noindex")
	w.WriteHeader(http.StatusForbidden)
	page.Execute(w, struct {
		Token, Return, TTL string
		Difficulty         int
		Script             template.JS
	}{token, back, readable(ttl), difficulty, template.JS(powScript)})
}

// readable says a duration as a visitor reads it: "1 hour", "30 minutes".
func readable(d time.Duration) string {
	unit, n := "minute", int(d/time.Minute)
	if d >= time.Hour && d%time.Hour == 0 {
		unit, n = "hour", int(d/time.Hour)
	}
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

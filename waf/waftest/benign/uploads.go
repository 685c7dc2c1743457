package benign

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
)

// picture draws a small gradient, the kind of bytes an avatar upload carries.
func (g *gen) picture() image.Image {
	w, h := 16+g.rnd.IntN(48), 16+g.rnd.IntN(48)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	r, gg, b := uint8(g.rnd.IntN(256)), uint8(g.rnd.IntN(256)), uint8(g.rnd.IntN(256))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{r + uint8(x*4), gg + uint8(y*4), b ^ uint8(x*y), 255})
		}
	}
	return img
}

func (g *gen) pngBytes() []byte {
	var b bytes.Buffer
	png.Encode(&b, g.picture())
	return b.Bytes()
}

func (g *gen) jpegBytes() []byte {
	var b bytes.Buffer
	jpeg.Encode(&b, g.picture(), &jpeg.Options{Quality: 70 + g.rnd.IntN(25)})
	return b.Bytes()
}

// pdfBytes is a one-page PDF with a line of text and a correct xref table.
func (g *gen) pdfBytes() []byte {
	text := "Invoice " + g.num(10000, 99999) + " - " + g.name()
	stream := "BT /F1 18 Tf 72 720 Td (" + text + ") Tj ET"
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(stream), stream),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

var configFiles = []struct{ name, contentType, data string }{
	{"config.json", "application/json", `{
  "name": "shop-frontend",
  "apiBaseUrl": "https://api.example.com/v1",
  "features": {"darkMode": true, "newCheckout": false},
  "locales": ["en", "de", "ja"],
  "retry": {"attempts": 3, "backoffMs": 250}
}
`},
	{"package.json", "application/json", `{
  "name": "web",
  "version": "1.4.2",
  "private": true,
  "scripts": {"dev": "vite", "build": "tsc && vite build", "test": "vitest run", "lint": "eslint . --ext ts,tsx"},
  "dependencies": {"react": "^19.0.0", "react-dom": "^19.0.0"},
  "devDependencies": {"typescript": "~5.6.3", "vite": "^6.0.1"}
}
`},
	{"docker-compose.yml", "application/x-yaml", `services:
  web:
    image: nginx:1.27-alpine
    ports:
      - "8080:80"
    volumes:
      - ./site:/usr/share/nginx/html:ro
    depends_on: [api]
  api:
    build: ./api
    environment:
      DATABASE_URL: postgres://app:app@db:5432/app?sslmode=disable
      LOG_LEVEL: info
  db:
    image: postgres:17
    environment:
      POSTGRES_USER: app
      POSTGRES_PASSWORD: app
    volumes:
      - pgdata:/var/lib/postgresql/data
volumes:
  pgdata: {}
`},
	{"deployment.yaml", "application/yaml", `apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop-api
  labels: {app: shop-api}
spec:
  replicas: 3
  selector:
    matchLabels: {app: shop-api}
  template:
    metadata:
      labels: {app: shop-api}
    spec:
      containers:
        - name: api
          image: registry.example.com/shop/api:1.4.2
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /healthz, port: 8080}
          resources:
            limits: {cpu: 500m, memory: 256Mi}
`},
	{"settings.yaml", "text/yaml", "# notification settings\nemail:\n  digest: weekly\n  on_select: all\nslack:\n  channel: \"#ops\"\n  mention: \"@here\"\n"},
	{"notes.txt", "text/plain", "Shopping list:\n- milk\n- eggs (6 or 12)\n- bread\n\nDrop off the parcel at the union office.\n"},
	{"contacts.csv", "text/csv", "name,email,phone\nAnna Müller,anna@example.com,+49 30 1234567\n\"O'Connor, Sean\",sean@example.org,+353 1 555 0100\n"},
}

// uploads are file uploads in multipart forms: images, PDFs and configuration files.
func (g *gen) uploads() {
	for i := range 60 {
		host := pick(g, sites)
		m := g.newMultipart()
		var target string
		switch i % 5 {
		case 0:
			target = "/account/avatar"
			m.file("avatar", pick(g, []string{"me.png", "IMG_2041.png", "profile picture.png"}), "image/png", g.pngBytes())
		case 1:
			target = "/api/v1/products/" + g.num(1000, 9999) + "/images"
			m.field("alt", pick(g, products))
			m.file("image", pick(g, []string{"DSC_0042.JPG", "photo.jpeg", "写真.jpg"}), "image/jpeg", g.jpegBytes())
		case 2:
			target = "/api/v1/invoices/upload"
			m.field("description", "Invoice for "+pick(g, []string{"November", "Q4", "order 48213"}))
			m.file("file", "invoice-"+g.num(1000, 9999)+".pdf", "application/pdf", g.pdfBytes())
		default:
			c := pick(g, configFiles)
			target = pick(g, []string{"/api/v1/projects/" + g.num(1, 99) + "/files", "/support/attachments", "/import"})
			m.field("path", "deploy/"+c.name)
			m.file("file", c.name, c.contentType, []byte(c.data))
		}
		ct, body := m.done()
		h := g.apiHeaders(ct)
		g.add("upload", "POST", host, target, h, body)
	}
}

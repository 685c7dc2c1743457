package benign

// The free text people type: reviews, support tickets, chat messages and
// notes, in several languages, including the ordinary English that reads
// like SQL to a word matcher.

var reviews = []string{
	"Great shoes, very comfortable. I'd buy them again!",
	"Runs small - order one size up. Otherwise perfect for trail running.",
	"The jacket's zipper broke after 2 weeks :( Customer service replaced it quickly though.",
	"5 stars. My son (he's 5' 11\") loves the fit & the color.",
	"Not bad for the price, but the \"waterproof\" claim is a stretch.",
	"Select all the sizes you need before checkout, the cart won't let you change them later.",
	"This is the union of everything I wanted: light, warm and cheap.",
	"Drop me a line if you restock the blue ones please.",
	"I ordered 2 or 1 more and it still counted as one shipment, nice.",
	"Where do I update my address? The form says - Select country - and nothing happens.",
	"Sehr bequem und gut verarbeitet. Die Lieferung kam schon nach zwei Tagen – top!",
	"Qualité correcte, mais la taille est un peu juste. Je recommande de prendre une pointure au-dessus.",
	"¡Me encantan! Son cómodas y el envío fue rapidísimo. ¿Habrá más colores?",
	"履き心地がとても良いです。サイズはいつも通りで大丈夫でした。",
	"质量很好，穿着很舒服，物流也很快。会再次购买！",
	"Отличные кроссовки, ношу уже месяц — никаких нареканий.",
	"منتج رائع وجودة ممتازة، التوصيل كان سريعاً.",
	"Produto excelente, chegou antes do prazo. Recomendo!",
	"배송이 빠르고 품질도 좋아요. 사이즈는 정사이즈입니다.",
	"Çok rahat, kalıbı tam. Tavsiye ederim.",
	"Świetne buty, bardzo wygodne. Polecam każdemu biegaczowi!",
	"Rated 4/5 -- would be 5 if the laces were longer.",
	"Meh. It's OK; not worth $120 <-- more like $80.",
	"Love it!!! 😍👟 #happyfeet",
	"Update: after 3 months of use, the sole is still fine. Delete my previous complaint, please.",
}

var tickets = []string{
	"Hi, I can't log in since yesterday. I tried resetting my password but the email never arrives. Can you help?",
	"Order #48213 arrived damaged. The box was crushed and one of the mugs is broken. Photos attached.",
	"Please delete my account and all data you have about me (GDPR art. 17).",
	"When I select all invoices and click export, the CSV only contains the first page.",
	"Our team needs the union of both reports - is there a way to merge them?",
	"The dropdown shows \"- Select vendor -\" but the list is empty for our region.",
	"I was charged twice for the same order, once on 12/03 and once on 12/04. Please refund one.",
	"Can you update the billing address to: Hauptstraße 5, 10115 Berlin, Germany?",
	"Where can I find the API rate limits? We get 429s after about 100 requests/min.",
	"The app crashes on Android 14 when I open settings -> notifications.",
	"Bonjour, ma commande n'est toujours pas arrivée après 10 jours. Pouvez-vous vérifier ?",
	"Hallo, die Rechnung für November fehlt in meinem Kundenkonto. Können Sie sie mir schicken?",
	"ログインできません。パスワードをリセットしてもメールが届きません。",
	"Hola, quiero cambiar la dirección de envío de mi pedido, ¿es posible?",
	"您好，我的订单显示已发货，但是物流信息三天没有更新。",
	"Is it possible to order by phone? I'd like 3 or 4 more of the same item.",
	"Your docs say to insert the key into the config, but where is the config file on Windows?",
	"We'd like to drop the old plan and switch to annual billing from January.",
	"Our SSO stopped working after we rotated the certificate; users see \"invalid_grant\".",
	"Hello! Could you tell me if the item in my cart (size M, color: navy) is back in stock?",
}

var chats = []string{
	"hey, are we still on for lunch?", "lol yes 😂", "can you send me the link again?", "ok, I'll join in 5",
	"who's bringing the cake?", "I'll drop by after work", "select a time that works for you and I'll book it",
	"thx!", "see you tomorrow 👋", "did you see the game last night?", "the meeting moved to 3pm",
	"je suis en retard, désolé", "bis später!", "了解です", "¿dónde estás?", "ok 👍", "sounds good -- let's do it",
	"I'm 50/50 on that", "the password is on the sticky note lol, jk", "1 more thing: bring the charger",
}

var markdown = []string{
	"## Release notes\n\n- Fixed login redirect loop\n- Added *dark mode*\n- Updated `react` to 19.0\n\nSee [changelog](https://example.com/changelog) for details.",
	"# Meeting notes 2026-12-07\n\n1. Select vendor for Q1\n2. Review the union contract\n3. Drop the legacy API by March\n\n> Action: Anna to send the summary.",
	"**TODO**\n- [x] write tests\n- [ ] update docs\n- [ ] ship it 🚀",
	"| plan | price |\n|---|---|\n| free | $0 |\n| pro | $12/mo |",
	"Use `npm install --save-dev eslint` and then `npx eslint .` to lint the project.",
}

// Code as developers paste it into tickets, gists, notebooks and chat.
var snippets = []struct{ lang, code string }{
	{"python", "import requests\n\nresp = requests.get(\"https://api.example.com/v1/items\", params={\"page\": 2})\nfor item in resp.json()[\"items\"]:\n    print(item[\"id\"], item[\"name\"])\n"},
	{"python", "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint([fib(i) for i in range(10)])\n"},
	{"javascript", "const res = await fetch('/api/v1/orders?limit=10');\nconst { orders } = await res.json();\nconsole.log(orders.map(o => o.id).join(', '));\n"},
	{"javascript", "export function debounce(fn, ms = 300) {\n  let t;\n  return (...args) => {\n    clearTimeout(t);\n    t = setTimeout(() => fn(...args), ms);\n  };\n}\n"},
	{"sql", "SELECT customer_id, COUNT(*) AS orders\nFROM orders\nWHERE created_at >= '2026-01-01'\nGROUP BY customer_id\nORDER BY orders DESC\nLIMIT 10;"},
	{"sql", "UPDATE products SET price = price * 1.05 WHERE category = 'shoes';"},
	{"go", "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n\t\tfmt.Println(\"hello\", i)\n\t}\n}\n"},
	{"bash", "#!/bin/sh\nset -e\ncurl -fsSL https://example.com/install.sh -o install.sh\nsh install.sh --prefix \"$HOME/.local\"\n"},
	{"yaml", "name: CI\non: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - run: go test ./...\n"},
	{"html", "<div class=\"card\">\n  <h2>{{ title }}</h2>\n  <p>{{ body }}</p>\n</div>"},
	{"css", ".btn-primary {\n  background: #0052cc;\n  border-radius: 4px;\n}\n.btn-primary:hover { background: #0065ff; }"},
	{"rust", "fn main() {\n    let v: Vec<i32> = (1..=5).collect();\n    println!(\"{:?}\", v.iter().sum::<i32>());\n}\n"},
}

var firstNames = []string{"Anna", "Jonas", "Mei", "Yuki", "Carlos", "Fatima", "Oliver", "Zofia", "Arjun", "Chloé", "Mehmet", "Sven", "O'Brien", "Ngozi", "José"}
var lastNames = []string{"Müller", "Smith", "Tanaka", "García", "Nowak", "Dubois", "Kim", "Ivanova", "O'Connor", "Van der Berg", "Silva", "Al-Sayed", "Nguyen"}
var products = []string{"Trail Runner 2", "Merino Wool Socks (3-pack)", "Down Jacket – Women's", "Stainless Water Bottle 750ml", "Rain Shell \"Storm\"", "Kids' Sneakers", "Yoga Mat 6mm", "Headlamp 400lm"}
var cities = []string{"Berlin", "Springfield", "Tōkyō", "São Paulo", "Kraków", "Lyon", "Austin", "Seoul", "Cape Town", "Montréal"}

package benign

import "net/url"

var gqlOps = []struct {
	query string
	vars  func(g *gen) map[string]any
}{
	{`query GetProduct($id: ID!) {
  product(id: $id) {
    id
    title
    description
    priceRange { minVariantPrice { amount currencyCode } }
    images(first: 5) { edges { node { url altText } } }
  }
}`, func(g *gen) map[string]any {
		return map[string]any{"id": "gid://shopify/Product/" + g.num(1000000, 9999999)}
	}},
	{`query Viewer { viewer { login name repositories(first: 10, orderBy: {field: UPDATED_AT, direction: DESC}) { nodes { name stargazerCount } } } }`,
		func(*gen) map[string]any { return nil }},
	{`mutation AddToCart($cartId: ID!, $lines: [CartLineInput!]!) {
  cartLinesAdd(cartId: $cartId, lines: $lines) {
    cart { id totalQuantity }
    userErrors { field message }
  }
}`, func(g *gen) map[string]any {
		return map[string]any{"cartId": "gid://shopify/Cart/" + g.alnum(26), "lines": []map[string]any{{"merchandiseId": "gid://shopify/ProductVariant/" + g.num(1000, 9999), "quantity": 1}}}
	}},
	{`mutation CreateReview($input: ReviewInput!) { createReview(input: $input) { id createdAt } }`,
		func(g *gen) map[string]any {
			return map[string]any{"input": map[string]any{"productId": g.num(1, 9999), "rating": 4, "body": pick(g, reviews)}}
		}},
	{`query Search($q: String!, $after: String) {
  search(query: $q, first: 20, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { ... on Product { id title } ... on Article { id headline } }
  }
}`, func(g *gen) map[string]any { return map[string]any{"q": pick(g, searchQueries), "after": nil} }},
	{`query { __typename }`, func(*gen) map[string]any { return nil }},
	{`subscription OnOrder($shop: String!) { orderUpdated(shop: $shop) { id status } }`,
		func(g *gen) map[string]any { return map[string]any{"shop": "shop-" + g.num(1, 99)} }},
}

// graphQL sends queries and mutations as POST JSON, GET ?query= and application/graphql.
func (g *gen) graphQL() {
	for i := range 70 {
		op := pick(g, gqlOps)
		vars := op.vars(g)
		switch i % 5 {
		case 0, 1, 2:
			body := map[string]any{"query": op.query, "variables": vars}
			if i%2 == 0 {
				body["operationName"] = nil
			}
			g.add("graphql", "POST", apiHost, "/graphql", g.apiHeaders("application/json"), jsonBody(body))
		case 3:
			q := url.Values{"query": {op.query}}
			if vars != nil {
				q.Set("variables", string(jsonBody(vars)))
			}
			g.add("graphql", "GET", apiHost, "/graphql?"+q.Encode(), g.apiHeaders(""), nil)
		case 4:
			g.add("graphql", "POST", apiHost, "/graphql", g.apiHeaders("application/graphql"), []byte(op.query))
		}
	}
}

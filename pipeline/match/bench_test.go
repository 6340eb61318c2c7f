package match

import "testing"

func BenchmarkMatch(b *testing.B) {
	doc := ej(b, `{"device_id": "device_7", "group_id": 3, "timestamp": "2024-01-01T00:00:00Z", "tags": ["a", "b", "c"], "obs": {"watts": 120, "temp": 21.5}, "items": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 5}]}`)
	for _, bc := range []struct{ name, filter string }{
		{"eq", `{"group_id": 3}`},
		{"dotted_range", `{"obs.watts": {"$gte": 100, "$lt": 200}}`},
		{"array_traversal", `{"items.qty": {"$gt": 4}}`},
		{"in", `{"tags": {"$in": ["q", "r", "s", "t", "u", "v", "w", "x", "c"]}}`},
		{"regex", `{"device_id": {"$regex": "^device_[0-9]+$"}}`},
		{"elemMatch", `{"items": {"$elemMatch": {"sku": "y", "qty": {"$gte": 5}}}}`},
		{"jsonSchema", solarSchema},
	} {
		m, err := Compile(ej(b, bc.filter), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Match(doc, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

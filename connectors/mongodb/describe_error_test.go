package mongodb

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A deployment that cannot be reached is worded for a user: the namespace, the host, that it
// cannot be reached, and the server's last error, without the driver's dump of its topology.
func TestUnreachableWording(t *testing.T) {
	d := unreachableDLQ(t)
	_, err := d.WriteBatch(context.Background(), []bson.Raw{raw(t, bson.D{{Key: "processorName", Value: "p"}})})
	if err == nil {
		t.Fatal("a write to 127.0.0.1:1 succeeded")
	}
	msg := err.Error()
	const want = "dead-letter queue errors.dlq on 127.0.0.1:1: the deployment cannot be reached (no server could be selected): "
	if !strings.HasPrefix(msg, want) || !strings.Contains(msg, "127.0.0.1:1: connect: connection refused") || strings.Contains(msg, "topology") {
		t.Fatalf("err = %q, want %q and the server's last error", msg, want)
	}
}

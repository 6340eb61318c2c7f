package authz

import "testing"

func TestParseStreamAction(t *testing.T) {
	cases := map[string]Action{
		"createStreamProcessor":   CreateStreamProcessor,
		"CREATE_STREAM_PROCESSOR": CreateStreamProcessor,
		"STREAM_PROCESSOR_STATS":  StreamProcessorStats,
		"listConnections":         ListStreamConnections,
		"LIST_CONNECTIONS":        ListStreamConnections,
		"LIST_STREAM_CONNECTIONS": ListStreamConnections,
	}
	for in, want := range cases {
		if got, ok := ParseStreamAction(in); !ok || got != want {
			t.Errorf("%s: got %q %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "FIND", "createstreamprocessor", "CREATE-STREAM-PROCESSOR"} {
		if _, ok := ParseStreamAction(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	if ModifyStreamProcessor.AtlasName() != "MODIFY_STREAM_PROCESSOR" {
		t.Error(ModifyStreamProcessor.AtlasName())
	}
}

package meta

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/chunk"
)

func TestWrappedKeyJSON(t *testing.T) {
	k := WrappedKey{Tenant: "acme", KeyID: chunk.KeyID{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}, Wrapped: []byte{1}, Created: t0}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"key_id":"deadbeef00010203"`) {
		t.Errorf("key id is not hex in JSON: %s", b)
	}
	var back WrappedKey
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, k) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	for _, bad := range []string{`"deadbeef"`, `"deadbeef0001020g"`, `"deadbeef000102030405"`} {
		if err := json.Unmarshal([]byte(`{"key_id":`+bad+`}`), &back); err == nil {
			t.Errorf("key id %s was accepted", bad)
		}
	}
}

package keys

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
)

func TestMasterNeverPrintsKey(t *testing.T) {
	m, _ := mustLoad(t, keyPath(t), nil, true)
	holder := struct {
		M   *Master
		Val Master
	}{m, *m}

	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%o", "%b", "%08b", "%T"} {
		fmt.Fprintf(&out, verb+"|"+verb+"|"+verb+"\n", m, *m, holder)
	}
	fmt.Fprintln(&out, m, *m, holder)
	logger := slog.New(slog.NewJSONHandler(&out, nil))
	logger.Info("loaded", "master", m, "value", *m)
	slog.New(slog.NewTextHandler(&out, nil)).Info("loaded", "master", m, "holder", holder)
	b, err := json.Marshal(holder)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(b)

	if containsKey(out.Bytes(), m.key[:]) || containsDecimal(out.Bytes(), m.key[:]) {
		t.Errorf("output shows the key:\n%s", out.Bytes())
	}
	// The check itself must be able to fail: printed raw, the key is found.
	if !containsDecimal([]byte(fmt.Sprint(m.key)), m.key[:]) || !containsKey([]byte(fmt.Sprintf("%x", m.key)), m.key[:]) {
		t.Error("the search does not find a printed key")
	}
}

// containsDecimal reports whether b holds the first eight bytes of key in
// fmt's decimal or octal rendering of a byte array.
func containsDecimal(b, key []byte) bool {
	for _, format := range []string{"%d", "%o"} {
		s := fmt.Sprintf(format, key[:8])
		if bytes.Contains(b, []byte(s[1:len(s)-1])) {
			return true
		}
	}
	return false
}

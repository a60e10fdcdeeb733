package member

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/store"
)

// FuzzJoinInput feeds what arrives from outside during a join — a token as
// pasted, and a member's reply — to their parsers: they refuse, never panic.
func FuzzJoinInput(f *testing.F) {
	f.Add("cairn-join-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA."+string(bytes.Repeat([]byte("ab"), 32)), []byte(`{"cluster_id":"x"}`))
	f.Add("", []byte(`{`))
	f.Add("cairn-join-.zz", []byte(`{"cluster_id":"cl-1","ca_cert":"AAAA","ca_key":"AAAA","node_cert":"AAAA","node_key":"AAAA"}`))
	f.Fuzz(func(t *testing.T, token string, reply []byte) {
		if tok, err := parseJoinToken(token); err == nil && len(tok.fingerprint) != 64 {
			t.Fatalf("accepted token with fingerprint %q", tok.fingerprint)
		}
		if rep, err := parseJoinReply(reply); err == nil {
			if rep.ClusterID == "" || len(rep.NodeKey) == 0 {
				t.Fatal("accepted an incomplete reply")
			}
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzSweepRequest feeds a member's sweep route what a peer could send.
func FuzzSweepRequest(f *testing.F) {
	f.Add(encodeSweep(time.Unix(5, 0), time.Unix(6, 0), mustFilter()))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		cutoff, purge, live, err := decodeSweep(b)
		if err != nil {
			return
		}
		filter, _ := live.MarshalBinary()
		if !bytes.Equal(encodeSweep(cutoff, purge, filter), b) {
			t.Fatal("decode then encode changed the request")
		}
	})
}

func mustFilter() []byte {
	b, _ := store.NewLiveSet(10, 1).MarshalBinary()
	return b
}

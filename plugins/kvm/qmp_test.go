package kvm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeQMP serves a scripted session: after the greeting, each request gets
// the lines of the next step, with the request's id substituted for ID.
func fakeQMP(t *testing.T, greeting string, steps ...[]string) (string, <-chan []string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []string, 1)
	go func() {
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var seen []string
		defer func() { got <- seen }()
		c.Write([]byte(greeting + "\n"))
		r := bufio.NewReader(c)
		for _, step := range steps {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			seen = append(seen, strings.TrimSpace(line))
			var req struct {
				ID string `json:"id"`
			}
			_ = json.Unmarshal([]byte(line), &req)
			for _, out := range step {
				out = strings.NewReplacer("\n", " ", "\t", " ").Replace(out)
				c.Write([]byte(strings.ReplaceAll(out, "ID", req.ID) + "\n"))
			}
		}
		_, _ = r.ReadString('\n')
	}()
	return sock, got
}

const greeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`

func TestQMPSession(t *testing.T) {
	sock, got := fakeQMP(t, greeting,
		[]string{`{"return": {}, "id": "ID"}`},
		[]string{`{"event": "JOB_STATUS_CHANGE", "data": {"status": "created", "id": "j"}, "timestamp": {"seconds": 1, "microseconds": 2}}`,
			`{"return": [{"node-name": "drive0", "drv": "qcow2", "image": {"virtual-size": 1048576},
			"dirty-bitmaps": [{"name": "cairn-a", "recording": true, "persistent": true}]}], "id": "ID"}`},
		[]string{`{"error": {"class": "GenericError", "desc": "Bitmap already exists: cairn-a"}, "id": "ID"}`},
	)
	ctx := t.Context()
	q, err := dialQMP(ctx, sock)
	if err != nil {
		t.Fatal(err)
	}
	defer q.close()
	n, err := NewVM(sock, "drive0", Tools{}).node(ctx, q)
	if err != nil {
		t.Fatalf("query-named-block-nodes: %v", err)
	}
	if n.Image.VirtualSize != 1<<20 || len(n.DirtyBitmaps) != 1 || !n.DirtyBitmaps[0].Recording {
		t.Fatalf("decoded %+v", n)
	}
	err = q.execute(ctx, "transaction", map[string]any{"actions": []any{}}, nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "GenericError" || !strings.Contains(err.Error(), "Bitmap already exists") {
		t.Fatalf("transaction: %v, want QEMU's GenericError", err)
	}
	q.close()
	seen := <-got
	if len(seen) != 3 || !strings.Contains(seen[0], `"execute":"qmp_capabilities"`) ||
		!strings.Contains(seen[1], `"arguments":{"flat":true}`) || strings.Contains(seen[0], "arguments") {
		t.Fatalf("requests sent: %q", seen)
	}
}

func TestQMPBadPeer(t *testing.T) {
	for name, tt := range map[string]struct {
		greeting string
		reply    string
	}{
		"no greeting":     {`{"return": {}}`, ``},
		"not JSON":        {`QMP ready`, ``},
		"wrong id":        {greeting, `{"return": {}, "id": "someone-else"}`},
		"two kinds":       {greeting, `{"return": {}, "error": {"class": "X", "desc": ""}, "id": "ID"}`},
		"error w/o class": {greeting, `{"error": {"desc": "x"}, "id": "ID"}`},
	} {
		t.Run(name, func(t *testing.T) {
			sock, _ := fakeQMP(t, tt.greeting, []string{tt.reply})
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			q, err := dialQMP(ctx, sock)
			if err == nil {
				q.close()
				t.Fatal("dialQMP succeeded")
			}
			if !errors.Is(err, ErrQMP) {
				t.Fatalf("dialQMP: %v, want ErrQMP", err)
			}
		})
	}
}

func FuzzQMPMessage(f *testing.F) {
	f.Add([]byte(greeting))
	f.Add([]byte(`{"return": {}, "id": "cairn-1"}`))
	f.Add([]byte(`{"error": {"class": "GenericError", "desc": "x"}, "id": "cairn-2"}`))
	f.Add([]byte(`{"event": "BLOCK_JOB_CANCELLED", "data": {}}`))
	f.Add([]byte(`{"return": [1,2,3]} {}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := parseQMP(line)
		if err != nil {
			if !errors.Is(err, ErrQMP) {
				t.Fatalf("error %v does not wrap ErrQMP", err)
			}
			return
		}
		if m.Error != nil && m.Error.Class == "" {
			t.Fatal("accepted an error without a class")
		}
	})
}

func FuzzImageInfo(f *testing.F) {
	f.Add([]byte(`{"virtual-size": 67108864, "format": "qcow2", "format-specific": {"type": "qcow2", "data": {"compat": "1.1",
		"bitmaps": [{"flags": ["in-use", "auto"], "name": "cairn-x", "granularity": 65536}], "corrupt": false}}}`))
	f.Add([]byte(`{"virtual-size": -1, "format": "raw"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseInfo(b)
		if err != nil {
			return
		}
		if info.Format == "" || info.VirtualSize < 0 {
			t.Fatalf("accepted %+v", info)
		}
		for _, bm := range info.FormatSpecific.Data.Bitmaps {
			_ = bm.usable()
		}
	})
}

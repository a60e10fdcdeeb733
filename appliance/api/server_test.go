package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/appliance/api"
	"github.com/cairnhq/cairn/appliance/api/apitest"
)

// call sends a raw request to the test server and returns the status and
// the decoded body.
func call(t *testing.T, srv *apitest.Server, method, path, token, body string) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req) // httptest's client trusts the server
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(data) > 0 && json.Unmarshal(data, &out) != nil {
		t.Fatalf("%s %s: body is not a JSON object: %q", method, path, data)
	}
	return resp.StatusCode, out, resp.Header
}

// image makes a sparse image file of the given size.
func image(t *testing.T, size int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestAuth(t *testing.T) {
	srv := apitest.NewServer(t)
	tests := []struct {
		name, path, header string
		status             int
	}{
		{"no header", "/api/v1/sources", "", 401},
		{"wrong token", "/api/v1/sources", "Bearer nope", 401},
		{"token with extra byte", "/api/v1/sources", "Bearer " + srv.Token + "x", 401},
		{"basic scheme", "/api/v1/sources", "Basic " + srv.Token, 401},
		{"right token", "/api/v1/sources", "Bearer " + srv.Token, 200},
		{"scheme in lower case", "/api/v1/sources", "bearer " + srv.Token, 200},
		{"health is public", "/api/v1/health", "", 200},
		{"openapi is public", "/api/v1/openapi.json", "", 200},
		{"jobs need a token", "/api/v1/jobs", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+tt.path, nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 401 {
				var body struct{ Error, Code string }
				json.NewDecoder(resp.Body).Decode(&body)
				if body.Code != "unauthorized" || !strings.Contains(body.Error, "Bearer") {
					t.Errorf("401 body %+v, want code unauthorized and a hint", body)
				}
				if resp.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			}
		})
	}
	if strings.Contains(srv.Log.String(), srv.Token) {
		t.Error("the token appears in the server log")
	}
}

func TestStatusMapping(t *testing.T) {
	srv := apitest.NewServer(t)
	tok := srv.Token
	img := image(t, 1<<20)
	src := `{"name":"web","kind":"file","config":{"path":"` + img + `"}}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"add source", "POST", "/api/v1/sources", src, 201, ""},
		{"duplicate source", "POST", "/api/v1/sources", src, 409, "already_exists"},
		{"bad source name", "POST", "/api/v1/sources", `{"name":"Web Server","kind":"file"}`, 400, "invalid"},
		{"service says invalid", "POST", "/api/v1/sources", `{"name":"x","kind":"nfs"}`, 400, "invalid"},
		{"objects of missing source", "GET", "/api/v1/sources/nope/objects", "", 404, "not_found"},
		{"missing restore point", "GET", "/api/v1/restore-points/rp-nope", "", 404, "not_found"},
		{"missing object", "POST", "/api/v1/backups", `{"source":"web","object":"other.img"}`, 404, "not_found"},
		{"full with extents", "POST", "/api/v1/backups", `{"source":"web","full":true,"changed_extents":[]}`, 400, "invalid"},
		{"negative extent", "POST", "/api/v1/backups", `{"source":"web","changed_extents":[{"offset":-1,"length":5}]}`, 400, "invalid"},
		{"backup", "POST", "/api/v1/backups", `{"source":"web"}`, 202, ""},
		{"missing job", "GET", "/api/v1/jobs/job-nope", "", 404, "not_found"},
		{"bad limit", "GET", "/api/v1/jobs?limit=0", "", 400, "invalid"},
		{"unknown query parameter", "GET", "/api/v1/restore-points?sorce=web", "", 400, "invalid"},
		{"repeated query parameter", "GET", "/api/v1/restore-points?source=a&source=b", "", 400, "invalid"},
		{"wrong method", "DELETE", "/api/v1/sources", "", 405, "method_not_allowed"},
		{"unknown path", "GET", "/api/v1/volumes", "", 404, "not_found"},
		{"restore without target", "POST", "/api/v1/restore-points/rp-1/restore", `{}`, 400, "invalid"},
		{"restore point mismatch", "POST", "/api/v1/restore-points/rp-1/restore", `{"restore_point":"rp-2","to":"file:/x"}`, 400, "invalid"},
		{"verify missing", "POST", "/api/v1/restore-points/rp-nope/verify", "", 404, "not_found"},
		{"verify with a body", "POST", "/api/v1/restore-points/rp-nope/verify", `{"deep":true}`, 400, "invalid"},
	}
	for _, tt := range tests {
		status, body, hdr := call(t, srv, tt.method, tt.path, tok, tt.body)
		if status != tt.status {
			t.Errorf("%s: status %d, want %d (body %v)", tt.name, status, tt.status, body)
			continue
		}
		if tt.code != "" {
			if body["code"] != tt.code || body["error"] == "" {
				t.Errorf("%s: body %v, want code %s and a message", tt.name, body, tt.code)
			}
			if msg, _ := body["error"].(string); strings.Contains(msg, "\n") {
				t.Errorf("%s: message spans lines: %q", tt.name, msg)
			}
		}
		if tt.status == 405 && hdr.Get("Allow") != "GET, POST, HEAD" {
			t.Errorf("%s: Allow %q", tt.name, hdr.Get("Allow"))
		}
	}
	// A job that has finished cannot be canceled.
	_, job, _ := call(t, srv, "POST", "/api/v1/backups", tok, `{"source":"web","full":true}`)
	id := job["id"].(string)
	for range 10 {
		call(t, srv, "GET", "/api/v1/jobs/"+id, tok, "")
	}
	if status, body, _ := call(t, srv, "POST", "/api/v1/jobs/"+id+"/cancel", tok, ""); status != 409 || body["code"] != "conflict" {
		t.Errorf("cancel of a finished job: %d %v, want 409 conflict", status, body)
	}
}

func TestStrictDecoding(t *testing.T) {
	srv := apitest.NewServer(t)
	tests := []struct {
		name, body, want string
	}{
		{"unknown field", `{"source":"web","fulll":true}`, `"fulll"`},
		{"nested unknown field", `{"source":"web","changed_extents":[{"offset":0,"length":1,"len":2}]}`, `"len"`},
		{"wrong type", `{"source":"web","full":"yes"}`, `"full"`},
		{"trailing data", `{"source":"web"} {"source":"web"}`, "after the JSON object"},
		{"empty body", ``, "empty"},
		{"truncated", `{"source":"we`, "ends inside"},
		{"not JSON", `source=web`, "malformed JSON"},
		{"missing source", `{}`, "source is required"},
	}
	for _, tt := range tests {
		status, body, _ := call(t, srv, "POST", "/api/v1/backups", srv.Token, tt.body)
		msg, _ := body["error"].(string)
		if status != 400 || body["code"] != "invalid" || !strings.Contains(msg, tt.want) {
			t.Errorf("%s: %d %v, want 400 invalid mentioning %s", tt.name, status, body, tt.want)
		}
	}
}

func TestBodyLimit(t *testing.T) {
	extents := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"source":"web","changed_extents":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"offset":%d,"length":4096}`, i*8192)
		}
		b.WriteString(`]}`)
		return b.String()
	}
	// The default limit takes a long list: 100,000 extents, 3 MB.
	srv := apitest.NewServer(t)
	srv.Service.AddSource(context.Background(), api.AddSourceRequest{Name: "web", Kind: "file", Config: map[string]string{"path": image(t, 1<<30)}})
	if status, body, _ := call(t, srv, "POST", "/api/v1/backups", srv.Token, extents(100_000)); status != 202 {
		t.Errorf("100,000 extents: %d %v, want 202", status, body)
	}

	h := api.NewServer(apitest.New(time.Now()), api.Options{Token: "t", MaxBodyBytes: 1000})
	for _, tt := range []struct {
		n      int
		status int
	}{{10, 404}, {100, 413}} {
		req := httptest.NewRequest("POST", "/api/v1/backups", strings.NewReader(extents(tt.n)))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.status {
			t.Errorf("%d extents with a 1000-byte limit: %d %s, want %d", tt.n, rec.Code, rec.Body, tt.status)
		}
		if tt.status == 413 && !strings.Contains(rec.Body.String(), `"too_large"`) {
			t.Errorf("413 body %s", rec.Body)
		}
	}
}

func TestAudit(t *testing.T) {
	srv := apitest.NewServer(t)
	img := image(t, 1<<20)
	call(t, srv, "POST", "/api/v1/sources", srv.Token,
		`{"name":"web","kind":"file","config":{"path":"`+img+`","password":"hunter2"}}`)
	call(t, srv, "GET", "/api/v1/sources", srv.Token, "")
	call(t, srv, "POST", "/api/v1/backups", "wrong-token", `{"source":"web"}`)
	_, job, _ := call(t, srv, "POST", "/api/v1/backups", srv.Token, `{"source":"web"}`)

	var records []map[string]any
	for line := range strings.Lines(srv.Log.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == "audit" {
			records = append(records, rec)
		}
	}
	if len(records) != 3 {
		t.Fatalf("%d audit records, want 3 (two mutating calls and one refused): %v", len(records), records)
	}
	want := []struct {
		path, principal string
		status          float64
	}{
		{"/api/v1/sources", "admin", 201},
		{"/api/v1/backups", "anonymous", 401},
		{"/api/v1/backups", "admin", 202},
	}
	for i, w := range want {
		r := records[i]
		if r["method"] != "POST" || r["path"] != w.path || r["principal"] != w.principal || r["status"] != w.status ||
			r["remote"] == "" || r["time"] == "" {
			t.Errorf("audit record %d = %v, want POST %s by %s → %v", i, r, w.path, w.principal, w.status)
		}
	}
	if records[2]["job"] != job["id"] {
		t.Errorf("audit record of the backup names job %v, want %v", records[2]["job"], job["id"])
	}
	log := srv.Log.String()
	for _, secret := range []string{srv.Token, "wrong-token", "hunter2"} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains %q", secret)
		}
	}
}

package api

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/appliance/report"
	"github.com/cairnhq/cairn/cluster/member"
	"github.com/cairnhq/cairn/cluster/meta"
	"github.com/cairnhq/cairn/plugins"
)

type openAPIParam struct {
	Name string `json:"name"`
	In   string `json:"in"`
}

type openAPIOp struct {
	Parameters  []openAPIParam             `json:"parameters"`
	Security    *[]map[string][]string     `json:"security"`
	RequestBody *json.RawMessage           `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

type openAPIDocument struct {
	OpenAPI    string                          `json:"openapi"`
	Security   []map[string][]string           `json:"security"`
	Paths      map[string]map[string]openAPIOp `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"schemas"`
	} `json:"components"`
}

func loadDoc(t *testing.T) openAPIDocument {
	t.Helper()
	var doc openAPIDocument
	dec := json.NewDecoder(strings.NewReader(string(openAPIDoc)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRoutes holds the document to the routes the server
// registers: every route documented with its path and query parameters and
// the right security, and nothing documented that is not served.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	if len(doc.Security) == 0 {
		t.Error("document has no global security requirement")
	}
	served := map[string]bool{}
	for _, rt := range NewServer(nil, Options{}).routes() {
		key := rt.method + " " + rt.path
		served[key] = true
		op, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s is served but not in openapi.json", key)
			continue
		}
		var pathParams, queryParams []string
		for _, p := range op.Parameters {
			switch p.In {
			case "path":
				pathParams = append(pathParams, p.Name)
			case "query":
				queryParams = append(queryParams, p.Name)
			}
		}
		var want []string
		for _, m := range regexp.MustCompile(`\{(\w+)\}`).FindAllStringSubmatch(rt.path, -1) {
			want = append(want, m[1])
		}
		if !sameSet(pathParams, want) {
			t.Errorf("%s: documented path parameters %v, pattern has %v", key, pathParams, want)
		}
		if !sameSet(queryParams, rt.query) {
			t.Errorf("%s: documented query parameters %v, server accepts %v", key, queryParams, rt.query)
		}
		public := op.Security != nil && len(*op.Security) == 0
		if public != rt.public {
			t.Errorf("%s: documented public=%v, served public=%v", key, public, rt.public)
		}
		if !rt.public {
			if _, ok := op.Responses["401"]; !ok {
				t.Errorf("%s: needs a token but documents no 401", key)
			}
		}
		if (rt.method == "POST") != (op.RequestBody != nil) && !strings.HasSuffix(rt.path, "/verify") && !strings.HasSuffix(rt.path, "/cancel") && !strings.HasSuffix(rt.path, "/join-tokens") {
			t.Errorf("%s: request body documented=%v", key, op.RequestBody != nil)
		}
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			key := strings.ToUpper(method) + " " + path
			if !served[key] {
				t.Errorf("%s is in openapi.json but not served", key)
			}
		}
	}
}

// TestOpenAPISchemasMatchTypes holds each documented schema to the JSON
// field names of the Go type it describes, so a renamed or new field in
// meta or plugins fails here until the document says so.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	doc := loadDoc(t)
	types := map[string]any{
		"Error":            errorBody{},
		"Health":           health{},
		"Source":           meta.Source{},
		"AddSourceRequest": AddSourceRequest{},
		"SourceList":       sourceList{},
		"Object":           plugins.Object{},
		"ObjectList":       objectList{},
		"Extent":           plugins.Extent{},
		"BackupRequest":    BackupRequest{},
		"RestoreRequest":   RestoreRequest{},
		"Job":              meta.Job{},
		"JobList":          jobList{},
		"Progress":         meta.Progress{},
		"VerifyResult":     meta.VerifyResult{},
		"RestorePoint":     meta.RestorePoint{},
		"RestorePointList": restorePointList{},
		"Disk":             meta.Disk{},
		"VerifyState":      meta.VerifyState{},
		"JoinToken":        JoinToken{},
		"GCRequest":        GCRequest{},
		"GCResult":         meta.GCResult{},
		"Deleted":          deleted{},
		"PolicyRequest":    PolicyRequest{},
		"Policy":           meta.Policy{},
		"Retention":        meta.Retention{},
		"PolicyList":       policyList{},
		"AssignRequest":    AssignRequest{},
		"PruneRequest":     PruneRequest{},
		"PruneResult":      PruneResult{},
		"PruneObject":      PruneObject{},
		"PrunedPoint":      PrunedPoint{},
		"ClusterStatus":    member.Status{},
		"NodeStatus":       member.NodeStatus{},
		"DailyReport":      report.Report{},
		"ReportTotals":     report.Totals{},
		"ReportObject":     report.Object{},
		"ReportFailure":    report.Failure{},
	}
	for name, schema := range doc.Components.Schemas {
		v, ok := types[name]
		if !ok {
			t.Errorf("schema %s describes no known type", name)
			continue
		}
		var props []string
		for p := range schema.Properties {
			props = append(props, p)
		}
		fields := jsonFields(reflect.TypeOf(v))
		if !sameSet(props, fields) {
			t.Errorf("schema %s has properties %v; %T has JSON fields %v", name, sorted(props), v, sorted(fields))
		}
		for _, r := range schema.Required {
			if !slices.Contains(props, r) {
				t.Errorf("schema %s requires %q, which it does not define", name, r)
			}
		}
	}
	for name := range types {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("type for schema %s is not documented", name)
		}
	}
}

func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}

func sameSet(a, b []string) bool {
	return slices.Equal(sorted(a), sorted(b))
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

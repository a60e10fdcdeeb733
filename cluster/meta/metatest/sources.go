package metatest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/cluster/meta"
)

func testAddSource(t *testing.T, open Opener) {
	tests := []struct {
		name   string
		before []string
		src    meta.Source
		want   error
	}{
		{"new", nil, testSource("nas"), nil},
		{"duplicate", []string{"nas"}, testSource("nas"), meta.ErrExists},
		{"other name", []string{"nas"}, testSource("nas2"), nil},
		{"bad name", nil, testSource("NAS"), meta.ErrInvalid},
		{"empty name", nil, testSource(""), meta.ErrInvalid},
		{"no kind", nil, meta.Source{Name: "nas", Tenant: "acme"}, meta.ErrInvalid},
		{"no tenant", nil, meta.Source{Name: "nas", Kind: "file"}, meta.ErrInvalid},
		{"bad tenant", nil, meta.Source{Name: "nas", Kind: "file", Tenant: "Acme Corp"}, meta.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := open(t)
			mustAddSource(t, l, tt.before...)
			err := l.AddSource(context.Background(), tt.src)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("AddSource = %v, want %v", err, tt.want)
			}
			got, gerr := l.Source(context.Background(), tt.src.Name)
			if tt.want == nil && (gerr != nil || !reflect.DeepEqual(got, tt.src)) {
				t.Errorf("Source = %+v, %v; want %+v", got, gerr, tt.src)
			}
		})
	}
}

func testSourceNotFound(t *testing.T, open Opener) {
	l := open(t)
	_, err := l.Source(context.Background(), "nope")
	if !errors.Is(err, meta.ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Source(nope) = %v, want ErrNotFound naming it", err)
	}
}

func testSourcesSorted(t *testing.T, open Opener) {
	l := open(t)
	mustAddSource(t, l, "vc2", "a.lab", "vc10", "0-first")
	got, err := l.Sources(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if want := []string{"0-first", "a.lab", "vc10", "vc2"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Sources = %v, want %v", names, want)
	}
}

func testRemoveSource(t *testing.T, open Opener) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, l Catalog)
		want  error
	}{
		{"unused", func(*testing.T, Catalog) {}, nil},
		{"missing", nil, meta.ErrNotFound},
		{"has restore points", func(t *testing.T, l Catalog) {
			mustCommit(t, l, testPoint("rp-1", "nas", "vm", t0))
		}, meta.ErrConflict},
		{"restore points of a source with a longer name do not count", func(t *testing.T, l Catalog) {
			mustAddSource(t, l, "nas2")
			mustCommit(t, l, testPoint("rp-1", "nas2", "vm", t0))
		}, nil},
		{"running job", func(t *testing.T, l Catalog) {
			if err := l.PutJob(ctx, meta.Job{ID: "j1", Kind: meta.JobBackup, State: meta.JobRunning, Source: "nas", Created: t0}); err != nil {
				t.Fatal(err)
			}
		}, meta.ErrConflict},
		{"finished job", func(t *testing.T, l Catalog) {
			if err := l.PutJob(ctx, meta.Job{ID: "j1", Kind: meta.JobBackup, State: meta.JobFailed, Source: "nas", Created: t0}); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := open(t)
			if tt.setup != nil {
				mustAddSource(t, l, "nas")
				tt.setup(t, l)
			}
			err := l.RemoveSource(ctx, "nas")
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("RemoveSource = %v, want %v", err, tt.want)
			}
			_, gerr := l.Source(ctx, "nas")
			if removed := errors.Is(gerr, meta.ErrNotFound); removed != (tt.want != meta.ErrConflict) {
				t.Errorf("after RemoveSource = %v: Source = %v", err, gerr)
			}
		})
	}
}

func testSourceCopies(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	s := testSource("nas")
	if err := l.AddSource(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Config["path"] = "changed after add"
	got, _ := l.Source(ctx, "nas")
	if got.Config["path"] != "/srv/nas" {
		t.Fatalf("changing the added value changed the stored one: %q", got.Config["path"])
	}
	got.Config["path"] = "changed after read"
	list, _ := l.Sources(ctx)
	again, _ := l.Source(ctx, "nas")
	if list[0].Config["path"] != "/srv/nas" || again.Config["path"] != "/srv/nas" {
		t.Errorf("changing a returned value changed the stored one")
	}
}

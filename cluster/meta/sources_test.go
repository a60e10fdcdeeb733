package meta

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestAddSource(t *testing.T) {
	tests := []struct {
		name   string
		before []string
		src    Source
		want   error
	}{
		{"new", nil, testSource("nas"), nil},
		{"duplicate", []string{"nas"}, testSource("nas"), ErrExists},
		{"other name", []string{"nas"}, testSource("nas2"), nil},
		{"bad name", nil, testSource("NAS"), ErrInvalid},
		{"empty name", nil, testSource(""), ErrInvalid},
		{"no kind", nil, Source{Name: "nas", Tenant: "acme"}, ErrInvalid},
		{"no tenant", nil, Source{Name: "nas", Kind: "file"}, ErrInvalid},
		{"bad tenant", nil, Source{Name: "nas", Kind: "file", Tenant: "Acme Corp"}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := openTest(t)
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

func TestSourceNotFound(t *testing.T) {
	l, _ := openTest(t)
	_, err := l.Source(context.Background(), "nope")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Source(nope) = %v, want ErrNotFound naming it", err)
	}
}

func TestSourcesSorted(t *testing.T) {
	l, _ := openTest(t)
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

func TestRemoveSource(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, l *Local)
		want  error
	}{
		{"unused", func(*testing.T, *Local) {}, nil},
		{"missing", nil, ErrNotFound},
		{"has restore points", func(t *testing.T, l *Local) {
			mustCommit(t, l, testPoint("rp-1", "nas", "vm", t0))
		}, ErrConflict},
		{"restore points of a source with a longer name do not count", func(t *testing.T, l *Local) {
			mustAddSource(t, l, "nas2")
			mustCommit(t, l, testPoint("rp-1", "nas2", "vm", t0))
		}, nil},
		{"running job", func(t *testing.T, l *Local) {
			if err := l.PutJob(ctx, Job{ID: "j1", Kind: JobBackup, State: JobRunning, Source: "nas", Created: t0}); err != nil {
				t.Fatal(err)
			}
		}, ErrConflict},
		{"finished job", func(t *testing.T, l *Local) {
			if err := l.PutJob(ctx, Job{ID: "j1", Kind: JobBackup, State: JobFailed, Source: "nas", Created: t0}); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := openTest(t)
			if tt.setup != nil {
				mustAddSource(t, l, "nas")
				tt.setup(t, l)
			}
			err := l.RemoveSource(ctx, "nas")
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("RemoveSource = %v, want %v", err, tt.want)
			}
			_, gerr := l.Source(ctx, "nas")
			if removed := errors.Is(gerr, ErrNotFound); removed != (tt.want != ErrConflict) {
				t.Errorf("after RemoveSource = %v: Source = %v", err, gerr)
			}
		})
	}
}

func TestSourceCopies(t *testing.T) {
	ctx := context.Background()
	l, _ := openTest(t)
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

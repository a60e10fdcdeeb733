package metatest

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

func testCommitRestorePoint(t *testing.T, open Opener) {
	with := func(f func(*meta.RestorePoint)) meta.RestorePoint {
		rp := testPoint("rp-2", "nas", "vm-1", t0.Add(time.Hour))
		f(&rp)
		return rp
	}
	tests := []struct {
		name    string
		rp      meta.RestorePoint
		want    error
		wantMsg string
		stored  func(*meta.RestorePoint) // how the stored copy differs from rp
	}{
		{"full", with(func(*meta.RestorePoint) {}), nil, "", nil},
		{"incremental", with(func(rp *meta.RestorePoint) { rp.Base = "rp-1" }), nil, "", nil},
		{"duplicate id", with(func(rp *meta.RestorePoint) { rp.ID = "rp-1" }), meta.ErrExists, "rp-1", nil},
		{"missing base", with(func(rp *meta.RestorePoint) { rp.Base = "rp-0" }), meta.ErrNotFound, "base rp-0", nil},
		{"missing source", with(func(rp *meta.RestorePoint) { rp.Source = "gone" }), meta.ErrNotFound, "source gone", nil},
		{"tenant from source", with(func(rp *meta.RestorePoint) { rp.Tenant = "" }), nil, "", func(rp *meta.RestorePoint) { rp.Tenant = "acme" }},
		{"other tenant", with(func(rp *meta.RestorePoint) { rp.Tenant = "globex" }), meta.ErrConflict, "tenant globex", nil},
		{"base of another tenant", with(func(rp *meta.RestorePoint) { rp.Source = "other"; rp.Tenant = ""; rp.Base = "rp-1" }), meta.ErrConflict, "base rp-1", nil},
		{"verify defaults to none", with(func(rp *meta.RestorePoint) { rp.Verify = meta.VerifyState{} }), nil, "", func(rp *meta.RestorePoint) { rp.Verify.State = meta.VerifyNone }},
		{"verified at commit", with(func(rp *meta.RestorePoint) { rp.Verify = meta.VerifyState{State: meta.VerifyOK, At: t0} }), nil, "", nil},
		{"bad verify state", with(func(rp *meta.RestorePoint) { rp.Verify.State = "maybe" }), meta.ErrInvalid, "maybe", nil},
		{"bad id", with(func(rp *meta.RestorePoint) { rp.ID = "RP 2" }), meta.ErrInvalid, "id", nil},
		{"no object", with(func(rp *meta.RestorePoint) { rp.Object = "" }), meta.ErrInvalid, "object", nil},
		{"huge object", with(func(rp *meta.RestorePoint) { rp.Object = strings.Repeat("x", maxObject+1) }), meta.ErrInvalid, "object", nil},
		{"no time", with(func(rp *meta.RestorePoint) { rp.Time = time.Time{} }), meta.ErrInvalid, "time", nil},
		{"own base", with(func(rp *meta.RestorePoint) { rp.Base = rp.ID }), meta.ErrInvalid, "base", nil},
		{"not encodable", with(func(rp *meta.RestorePoint) { rp.Duration = math.NaN() }), meta.ErrInvalid, "encode", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l := open(t)
			mustAddSource(t, l, "nas")
			if err := l.AddSource(ctx, meta.Source{Name: "other", Kind: "file", Tenant: "globex", Created: t0}); err != nil {
				t.Fatal(err)
			}
			mustCommit(t, l, testPoint("rp-1", "nas", "vm-1", t0))

			err := l.CommitRestorePoint(ctx, tt.rp)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CommitRestorePoint = %v, want %v", err, tt.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "commit restore point") || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("error %q does not say what failed (%q)", err, tt.wantMsg)
				}
				if tt.rp.ID != "rp-1" {
					if _, gerr := l.RestorePoint(ctx, tt.rp.ID); !errors.Is(gerr, meta.ErrNotFound) {
						t.Errorf("refused restore point is visible: %v", gerr)
					}
				}
				if list, _ := l.RestorePoints(ctx, meta.Filter{}); len(list) != 1 {
					t.Errorf("refused commit left %d restore points, want 1", len(list))
				}
				return
			}
			want := tt.rp
			if tt.stored != nil {
				tt.stored(&want)
			}
			got, err := l.RestorePoint(ctx, tt.rp.ID)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("stored = %+v, %v\nwant %+v", got, err, want)
			}
		})
	}
}

func testRestorePointNotFound(t *testing.T, open Opener) {
	l := open(t)
	if _, err := l.RestorePoint(context.Background(), "rp-x"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("RestorePoint(rp-x) = %v, want ErrNotFound", err)
	}
}

func testRestorePointsFilter(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	mustAddSource(t, l, "nas", "nas2", "vc")
	if err := l.AddSource(ctx, meta.Source{Name: "globex-vc", Kind: "vsphere", Tenant: "globex", Created: t0}); err != nil {
		t.Fatal(err)
	}
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	mustCommit(t, l,
		testPoint("rp-c", "nas", "vm-1", h(2)),
		testPoint("rp-a", "nas", "vm-1", h(1)),
		testPoint("rp-b", "nas", "vm-2", h(1)), // same time as rp-a: ID decides
		testPoint("rp-d", "nas", "vm-10", h(0)),
		testPoint("rp-e", "nas2", "vm-1", h(3)),
		testPoint("rp-f", "vc", "vm-1", h(-1)),
		meta.RestorePoint{ID: "rp-g", Source: "globex-vc", Object: "vm-1", Time: h(4)},
	)
	tests := []struct {
		f    meta.Filter
		want []string
	}{
		{meta.Filter{}, []string{"rp-f", "rp-d", "rp-a", "rp-b", "rp-c", "rp-e", "rp-g"}},
		{meta.Filter{Source: "nas"}, []string{"rp-d", "rp-a", "rp-b", "rp-c"}},
		{meta.Filter{Source: "nas", Object: "vm-1"}, []string{"rp-a", "rp-c"}},
		{meta.Filter{Source: "nas", Object: "vm-"}, nil},
		{meta.Filter{Object: "vm-1"}, []string{"rp-f", "rp-a", "rp-c", "rp-e", "rp-g"}},
		{meta.Filter{Source: "nas2"}, []string{"rp-e"}},
		{meta.Filter{Source: "gone"}, nil},
		{meta.Filter{Tenant: "globex"}, []string{"rp-g"}},
		{meta.Filter{Tenant: "acme", Object: "vm-1"}, []string{"rp-f", "rp-a", "rp-c", "rp-e"}},
	}
	for _, tt := range tests {
		got, err := l.RestorePoints(ctx, tt.f)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, rp := range got {
			ids = append(ids, rp.ID)
		}
		if !reflect.DeepEqual(ids, tt.want) {
			t.Errorf("RestorePoints(%+v) = %v, want %v", tt.f, ids, tt.want)
		}
	}
}

func testLatest(t *testing.T, open Opener) {
	h := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	failed := meta.VerifyState{State: meta.VerifyFailed, At: h(9), Error: "chunk missing"}
	tests := []struct {
		name   string
		verify map[string]meta.VerifyState
		object string
		want   string // "" means meta.ErrNotFound
	}{
		{"newest", nil, "vm-1", "rp-3"},
		{"skips failed", map[string]meta.VerifyState{"rp-3": failed}, "vm-1", "rp-2"},
		{"skips every failed", map[string]meta.VerifyState{"rp-3": failed, "rp-2": failed}, "vm-1", "rp-1"},
		{"ok counts", map[string]meta.VerifyState{"rp-3": {State: meta.VerifyOK, At: h(9)}}, "vm-1", "rp-3"},
		{"all failed", map[string]meta.VerifyState{"rp-3": failed, "rp-2": failed, "rp-1": failed}, "vm-1", ""},
		{"other object alone", nil, "vm-10", "rp-9"},
		{"no restore points", nil, "vm-2", ""},
		{"prefix of an object is not it", nil, "vm-", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l := open(t)
			mustAddSource(t, l, "nas", "nas2")
			mustCommit(t, l,
				testPoint("rp-2", "nas", "vm-1", h(2)),
				testPoint("rp-1", "nas", "vm-1", h(1)),
				testPoint("rp-3", "nas", "vm-1", h(3)),
				testPoint("rp-9", "nas", "vm-10", h(9)),
				testPoint("rp-8", "nas2", "vm-1", h(8)),
			)
			for id, v := range tt.verify {
				if err := l.SetVerify(ctx, id, v); err != nil {
					t.Fatal(err)
				}
			}
			got, err := l.Latest(ctx, "nas", tt.object)
			if tt.want == "" {
				if !errors.Is(err, meta.ErrNotFound) {
					t.Errorf("Latest = %s, %v; want ErrNotFound", got.ID, err)
				}
				return
			}
			if err != nil || got.ID != tt.want {
				t.Errorf("Latest = %s, %v; want %s", got.ID, err, tt.want)
			}
		})
	}
}

func testSetVerify(t *testing.T, open Opener) {
	at := t0.Add(time.Hour)
	tests := []struct {
		name string
		id   string
		v    meta.VerifyState
		want error
	}{
		{"ok", "rp-1", meta.VerifyState{State: meta.VerifyOK, At: at}, nil},
		{"failed", "rp-1", meta.VerifyState{State: meta.VerifyFailed, At: at, Error: "2 chunks corrupt"}, nil},
		{"back to none", "rp-1", meta.VerifyState{State: meta.VerifyNone}, nil},
		{"unknown state", "rp-1", meta.VerifyState{State: "good"}, meta.ErrInvalid},
		{"empty state", "rp-1", meta.VerifyState{}, meta.ErrInvalid},
		{"missing", "rp-2", meta.VerifyState{State: meta.VerifyOK, At: at}, meta.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			l := open(t)
			mustAddSource(t, l, "nas")
			rp := testPoint("rp-1", "nas", "vm-1", t0)
			mustCommit(t, l, rp)
			err := l.SetVerify(ctx, tt.id, tt.v)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("SetVerify = %v, want %v", err, tt.want)
			}
			if err == nil {
				rp.Verify = tt.v
			}
			if got, _ := l.RestorePoint(ctx, "rp-1"); !reflect.DeepEqual(got, rp) {
				t.Errorf("after SetVerify: %+v\nwant %+v", got, rp)
			}
		})
	}
}

func testRestorePointCopies(t *testing.T, open Opener) {
	ctx := context.Background()
	l := open(t)
	mustAddSource(t, l, "nas")
	rp := testPoint("rp-1", "nas", "vm-1", t0)
	mustCommit(t, l, rp)
	rp.Disks[0].Capacity = 1
	got, _ := l.RestorePoint(ctx, "rp-1")
	if got.Disks[0].Capacity != 8<<20 {
		t.Fatal("changing the committed value changed the stored one")
	}
	got.Disks[0].Capacity = 2
	list, _ := l.RestorePoints(ctx, meta.Filter{Source: "nas"})
	list[0].Disks[0].Capacity = 3
	latest, _ := l.Latest(ctx, "nas", "vm-1")
	again, _ := l.RestorePoint(ctx, "rp-1")
	if latest.Disks[0].Capacity != 8<<20 || again.Disks[0].Capacity != 8<<20 {
		t.Error("changing a returned value changed the stored one")
	}
}

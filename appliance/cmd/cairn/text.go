package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cairnhq/cairn/cluster/meta"
)

// objectName writes an object the way backup run takes it.
func objectName(source, object string) string {
	if object == "" {
		return source
	}
	return source + "/" + object
}

// showJob prints a job as JSON or as text.
func (a *app) showJob(j meta.Job) error {
	if a.wantJSON() {
		return a.printJSON(j)
	}
	f := newFields(a.stdout)
	f.add("Job", j.ID)
	f.add("Kind", j.Kind)
	f.add("State", j.State)
	f.add("Object", objectName(j.Source, j.Object))
	f.add("Node", j.Node)
	if j.Policy != "" {
		f.add("Scheduled", j.Policy+", slot "+a.when(j.Slot))
	}
	if j.CancelRequested && !j.Done() {
		f.add("Cancel", "requested; the node stops the job when it next renews its lease")
	}
	f.add("Restore point", j.RestorePoint)
	f.add("Target", j.Target)
	f.add("Progress", progressText(j.Progress))
	f.add("Created", a.when(j.Created))
	f.add("Started", a.when(j.Started))
	f.add("Finished", a.when(j.Finished))
	if !j.Started.IsZero() && !j.Finished.IsZero() {
		f.add("Took", seconds(j.Finished.Sub(j.Started)))
	}
	f.add("Error", j.Error)
	for _, m := range j.Messages {
		f.add("Note", m)
	}
	if v := j.Verify; v != nil {
		f.add("Verified", verifySummary(*v))
	}
	for _, k := range slices.Sorted(maps.Keys(j.Result)) {
		f.add("Result "+k, j.Result[k])
	}
	return f.flush()
}

func progressText(p meta.Progress) string {
	if p.Total <= 0 {
		if p.Done == 0 {
			return ""
		}
		return humanBytes(p.Done)
	}
	return fmt.Sprintf("%s of %s (%s)", humanBytes(p.Done), humanBytes(p.Total), percent(p.Done, p.Total))
}

func verifySummary(v meta.VerifyResult) string {
	state := "ok"
	if !v.OK {
		state = "FAILED"
	}
	return fmt.Sprintf("%s: %d chunks (%s) checked, %d corrupt, %d missing",
		state, v.ChunksChecked, humanBytes(v.BytesChecked), v.Corrupt, v.Missing)
}

// showRestorePoint prints a restore point as JSON or as text.
func (a *app) showRestorePoint(rp meta.RestorePoint) error {
	if a.wantJSON() {
		return a.printJSON(rp)
	}
	f := newFields(a.stdout)
	f.add("Restore point", rp.ID)
	f.add("Object", objectName(rp.Source, rp.Object))
	f.add("Tenant", rp.Tenant)
	f.add("Time", a.when(rp.Time))
	f.add("Base", rp.Base)
	f.add("Job", rp.Job)
	f.add("Consistency", rp.Consistency)
	f.add("Size", humanBytes(rp.LogicalBytes))
	f.add("Read", humanBytes(rp.ReadBytes))
	f.add("New", fmt.Sprintf("%s in %d of %d chunks (%s stored)", humanBytes(rp.NewBytes), rp.NewChunks, rp.Chunks, humanBytes(rp.StoredBytes)))
	f.add("Zero blocks", fmt.Sprint(rp.ZeroBlocks))
	f.add("Took", seconds(time.Duration(rp.Duration*float64(time.Second))))
	f.add("Fingerprint", rp.Fingerprint)
	f.add("Verified", a.verifyState(rp.Verify))
	if err := f.flush(); err != nil {
		return err
	}
	if len(rp.Disks) == 0 {
		return nil
	}
	fmt.Fprintln(a.stdout)
	t := newTable(a.stdout, "DISK", "CAPACITY", "METHOD", "FINGERPRINT")
	for _, d := range rp.Disks {
		t.row(d.Key, humanBytes(d.Capacity), d.Method, d.Fingerprint)
	}
	return t.flush()
}

func (a *app) verifyState(v meta.VerifyState) string {
	s := v.State
	if !v.At.IsZero() {
		s += " at " + a.when(v.At)
	}
	if v.Error != "" {
		s += ": " + v.Error
	}
	return s
}

// configText renders a source's config as k=v pairs, with the values of
// keys that look secret hidden.
func configText(cfg map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		v := cfg[k]
		lk := strings.ToLower(k)
		if strings.Contains(lk, "password") || strings.Contains(lk, "secret") || strings.Contains(lk, "token") {
			v = "***"
		}
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

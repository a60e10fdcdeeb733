// Package lvm is Cairn's plugin for LVM thin volumes, with thin_delta as its
// change tracking.
//
// A Source protects the thin volumes of one volume group (setting "vg"): each
// thin volume is an object with one disk, "disk0", or, with setting "lv",
// only the named one. Snapshots Cairn makes are never objects themselves.
//
// A backup takes a thin snapshot of the volume (lvcreate --snapshot, then
// lvchange --activate y --ignoreactivationskip, since thin snapshots skip
// activation) and reads its device, /dev/VG/SNAPSHOT, so the restore point is
// crash-consistent. To find what to read it reserves a metadata snapshot of
// the pool (dmsetup message VG-POOL-tpool 0 reserve_metadata_snap), runs
// thin_delta --metadata-snap on /dev/mapper/VG-POOL_tmeta, and releases the
// metadata snapshot again whatever happened. A full backup compares the new
// snapshot with itself, which lists every block it maps (method
// "allocated"); an incremental compares the base's snapshot with the new one
// and reads the blocks that are different, newly mapped or unmapped (method
// "thin-delta", a delta). Blocks are the pool's data blocks, whose size
// thin_delta's report gives.
//
// Rotation. Snapshots are named ORIGIN.cairn-SOURCE.SEQ, and the change
// token is "NAME@THINID" of the new one. The snapshot of the latest committed
// restore point is kept as the base of the next incremental. A new backup's
// snapshot replaces it only once the restore point is committed: the caller
// calls Committed (plugins.Committer), which removes every other snapshot
// this source made of the volume, the previous base and anything an
// interrupted run left. Close without Committed (any failure: snapshot,
// thin_delta, read, store, catalog) removes the new snapshot and leaves the
// previous base untouched. A base that is gone, or whose name now belongs to
// another thin device, gives a full read of the allocated blocks. Between
// backups each protected volume therefore carries one thin snapshot, which
// holds the blocks overwritten since.
//
// The kernel holds at most one metadata snapshot per pool, so this process
// takes them in turn per pool; a metadata snapshot held by another tool makes
// the backup fail with dmsetup's error.
//
// A Target restores into a new thin volume (lvcreate --thin) written under
// a temporary name that Commit renames into place, replacing an existing
// thin volume only when overwriting.
//
// All commands go through the LVM interface; CLI runs them with a Runner
// (Exec in production), so tests check every argument list without
// device-mapper.
package lvm

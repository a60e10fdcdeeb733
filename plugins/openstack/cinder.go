package openstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

// Metadata keys Cairn puts on what it creates, so a later run finds the
// leftovers of one that crashed or lost the API.
const (
	metaRole   = "cairn-role"   // what the object is for: one of the role* values
	metaSource = "cairn-source" // the source volume a read volume was made for
	metaRun    = "cairn-run"    // the plugin process that made a restore volume
)

// Roles.
const (
	rolePoint   = "point"   // a snapshot that is (or was to be) a change token
	roleRead    = "read"    // a temporary volume made from a snapshot to read it
	roleRestore = "restore" // a volume being restored into, until Commit
)

// namePrefix starts the name of everything the plugin creates.
const namePrefix = "cairn-"

// runID names this process, so a restore volume left by an earlier process
// (one that crashed) is told from one being written now.
var runID = newRunID()

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errStatus is returned when Cinder puts a resource in an error state.
var errStatus = errors.New("cinder reports an error state")

// api is the Cinder calls the plugin makes, with waiting and clean-up.
type api struct {
	sc   *gophercloud.ServiceClient
	host string        // the connector's host name: this appliance
	wait time.Duration // how long one resource may take to become ready
}

// poll calls f until it reports done, an error, or the wait runs out,
// sleeping with a backoff from 50 ms to 1 s.
func (a *api) poll(ctx context.Context, what string, f func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, a.wait)
	defer cancel()
	sleep := 50 * time.Millisecond
	for {
		done, err := f()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not done after %s: %w", what, a.wait, ctx.Err())
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, 250*time.Millisecond)
	}
}

// notFound reports whether err is Cinder's 404.
func notFound(err error) bool {
	return gophercloud.ResponseCodeIs(err, http.StatusNotFound)
}

// waitVolume waits until volume id has status want and returns it. An
// error status fails at once.
func (a *api) waitVolume(ctx context.Context, id, want string) (*volumes.Volume, error) {
	var v *volumes.Volume
	err := a.poll(ctx, "wait for volume "+id+" to be "+want, func() (bool, error) {
		var err error
		if v, err = volumes.Get(ctx, a.sc, id).Extract(); err != nil {
			return false, fmt.Errorf("get volume %s: %w", id, err)
		}
		switch v.Status {
		case want:
			return true, nil
		case "error", "error_restoring", "error_extending", "error_deleting", "error_managing":
			return false, fmt.Errorf("volume %s went to status %s: %w", id, v.Status, errStatus)
		}
		return false, nil
	})
	return v, err
}

// waitSnapshot waits until snapshot id is available.
func (a *api) waitSnapshot(ctx context.Context, id string) (*snapshots.Snapshot, error) {
	var s *snapshots.Snapshot
	err := a.poll(ctx, "wait for snapshot "+id, func() (bool, error) {
		var err error
		if s, err = snapshots.Get(ctx, a.sc, id).Extract(); err != nil {
			return false, fmt.Errorf("get snapshot %s: %w", id, err)
		}
		switch s.Status {
		case "available":
			return true, nil
		case "error", "error_deleting":
			return false, fmt.Errorf("snapshot %s went to status %s: %w", id, s.Status, errStatus)
		}
		return false, nil
	})
	return s, err
}

// deleteVolume deletes a volume and waits until it is gone. A volume
// already gone is not an error.
func (a *api) deleteVolume(ctx context.Context, id string) error {
	if err := volumes.Delete(ctx, a.sc, id, volumes.DeleteOpts{}).ExtractErr(); err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("delete volume %s: %w", id, err)
	}
	return a.poll(ctx, "wait for volume "+id+" to be deleted", func() (bool, error) {
		v, err := volumes.Get(ctx, a.sc, id).Extract()
		if notFound(err) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("get volume %s: %w", id, err)
		}
		if v.Status == "error_deleting" {
			return false, fmt.Errorf("delete volume %s: status %s: %w", id, v.Status, errStatus)
		}
		return false, nil
	})
}

// deleteSnapshot deletes a snapshot and waits until it is gone.
func (a *api) deleteSnapshot(ctx context.Context, id string) error {
	if err := snapshots.Delete(ctx, a.sc, id).ExtractErr(); err != nil {
		if notFound(err) {
			return nil
		}
		return fmt.Errorf("delete snapshot %s: %w", id, err)
	}
	return a.poll(ctx, "wait for snapshot "+id+" to be deleted", func() (bool, error) {
		s, err := snapshots.Get(ctx, a.sc, id).Extract()
		if notFound(err) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("get snapshot %s: %w", id, err)
		}
		if s.Status == "error_deleting" {
			return false, fmt.Errorf("delete snapshot %s: status %s: %w", id, s.Status, errStatus)
		}
		return false, nil
	})
}

// attachment is an attachment of a volume to this appliance.
type attachment struct {
	ID, VolumeID string
	Device       device // the volume, connected

	disconnected bool
}

// attach attaches a volume to this appliance through the attachments API
// (3.27+) with the appliance as the connector, then marks it complete
// (3.44). The request has no instance_uuid: the appliance attaches as a
// host, not as a Nova server, so Cinder never calls Nova about it, and
// deleting the attachment works without Nova. gophercloud's CreateOpts
// always sends instance_uuid, so the body is built here.
func (a *api) attach(ctx context.Context, volumeID string) (*attachment, error) {
	body := map[string]any{"attachment": map[string]any{
		"volume_uuid": volumeID,
		"connector": map[string]any{
			"host": a.host, "platform": runtime.GOARCH, "os_type": runtime.GOOS,
			"multipath": false, "mode": "rw",
		},
	}}
	var reply struct {
		Attachment struct {
			ID             string          `json:"id"`
			ConnectionInfo json.RawMessage `json:"connection_info"`
		} `json:"attachment"`
	}
	_, err := a.sc.Post(ctx, a.sc.ServiceURL("attachments"), body, &reply, &gophercloud.RequestOpts{OkCodes: []int{200, 202}})
	if err != nil {
		err = fmt.Errorf("attach volume %s to %s: %w", volumeID, a.host, err)
		// A failed create can leave an attachment behind (Cinder keeps the
		// record when the driver refuses the connection), holding the
		// volume "reserved"; the volume was detached before, so every
		// attachment it has now is this one.
		if cerr := a.detachAll(ctx, volumeID); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	att := &attachment{ID: reply.Attachment.ID, VolumeID: volumeID}
	if att.ID == "" {
		return nil, fmt.Errorf("attach volume %s: the reply names no attachment", volumeID)
	}
	fail := func(err error) (*attachment, error) {
		if derr := a.detach(ctx, att); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	dev, err := connect(ctx, reply.Attachment.ConnectionInfo)
	if err != nil {
		return fail(fmt.Errorf("attach volume %s: %w", volumeID, err))
	}
	att.Device = dev
	if err := attachments.Complete(ctx, a.sc, att.ID).ExtractErr(); err != nil {
		return fail(fmt.Errorf("complete attachment %s of volume %s: %w", att.ID, volumeID, err))
	}
	return att, nil
}

// detach disconnects an attachment's device and deletes the attachment;
// one already gone is not an error.
func (a *api) detach(ctx context.Context, att *attachment) error {
	if att.Device != nil && !att.disconnected {
		if err := att.Device.Close(ctx); err != nil {
			return fmt.Errorf("detach volume %s: disconnect %s: %w", att.VolumeID, att.Device, err)
		}
		att.disconnected = true
	}
	err := attachments.Delete(ctx, a.sc, att.ID).ExtractErr()
	if err != nil && !notFound(err) {
		return fmt.Errorf("detach volume %s (attachment %s): %w", att.VolumeID, att.ID, err)
	}
	return nil
}

// attachmentsOf lists the attachments of a volume.
func (a *api) attachmentsOf(ctx context.Context, volumeID string) ([]attachments.Attachment, error) {
	page, err := attachments.List(a.sc, attachments.ListOpts{VolumeID: volumeID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list attachments of volume %s: %w", volumeID, err)
	}
	return attachments.ExtractAttachments(page)
}

// detachAll deletes every attachment of a volume.
func (a *api) detachAll(ctx context.Context, id string) error {
	atts, err := a.attachmentsOf(ctx, id)
	if err != nil {
		return err
	}
	for _, at := range atts {
		if err := a.detach(ctx, &attachment{ID: at.ID, VolumeID: id}); err != nil {
			return err
		}
	}
	return nil
}

// removeVolume detaches every attachment of a volume and deletes it.
func (a *api) removeVolume(ctx context.Context, id string) error {
	if err := a.detachAll(ctx, id); err != nil {
		return err
	}
	return a.deleteVolume(ctx, id)
}

// listVolumes lists the project's volumes, with detail.
func (a *api) listVolumes(ctx context.Context, opts volumes.ListOpts) ([]volumes.Volume, error) {
	page, err := volumes.List(a.sc, opts).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	return volumes.ExtractVolumes(page)
}

// cairnSnapshots lists the snapshots of a volume that Cairn made.
func (a *api) cairnSnapshots(ctx context.Context, volumeID string) ([]snapshots.Snapshot, error) {
	page, err := snapshots.ListDetail(a.sc, snapshots.ListOpts{VolumeID: volumeID}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots of volume %s: %w", volumeID, err)
	}
	all, err := snapshots.ExtractSnapshots(page)
	if err != nil {
		return nil, err
	}
	var out []snapshots.Snapshot
	for _, s := range all {
		if s.Metadata[metaRole] == rolePoint {
			out = append(out, s)
		}
	}
	return out, nil
}

// retry runs f until it succeeds or budget runs out, for clean-up that
// must survive a short API outage.
func retry(ctx context.Context, budget time.Duration, f func(context.Context) error) error {
	deadline := time.Now().Add(budget)
	sleep := 100 * time.Millisecond
	for {
		err := f(ctx)
		if err == nil || time.Now().Add(sleep).After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(sleep):
		}
		sleep = min(sleep*2, 5*time.Second)
	}
}

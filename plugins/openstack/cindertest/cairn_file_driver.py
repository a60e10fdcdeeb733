"""A file-backed Cinder volume driver for Cairn's tests.

It subclasses Cinder's own FakeLoggingVolumeDriver (shipped in python3-cinder
as cinder/tests/fake_driver.py), which fakes the control plane, and makes the
data plane real: every volume and snapshot is a sparse file in the directory
named by $CAIRN_CINDER_FILES, snapshots and clones are sparse copies, and a
connection is ``driver_volume_type: local`` with ``device_path`` set to the
volume's file, so a client on the same machine reads and writes real bytes.

Failure injection for tests, keyed on the source volume's display name:
"fail-snapshot" makes create_snapshot raise (the snapshot goes to status
"error"); "fail-attach" makes initialize_connection of any volume created from
that volume's snapshots raise (the attachment fails).
"""

import os
import subprocess

from cinder import exception
from cinder.tests import fake_driver

GIB = 1024 ** 3


def _dir():
    return os.environ["CAIRN_CINDER_FILES"]


def _vol_path(volume):
    return os.path.join(_dir(), "volume-%s" % volume.id)


def _snap_path(snapshot):
    return os.path.join(_dir(), "snapshot-%s" % snapshot.id)


def _copy(src, dst, size_gb):
    subprocess.run(["cp", "--reflink=auto", "--sparse=always", src, dst],
                   check=True)
    with open(dst, "r+b") as f:
        if f.seek(0, os.SEEK_END) < size_gb * GIB:
            f.truncate(size_gb * GIB)


def _name(volume):
    return volume.display_name or ""


class FileDriver(fake_driver.FakeLoggingVolumeDriver):
    """Volumes and snapshots are sparse files; connections are local."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.backend_name = "cairnfile"
        self.protocol = "local"

    def do_setup(self, context):
        os.makedirs(_dir(), exist_ok=True)

    def create_volume(self, volume):
        with open(_vol_path(volume), "wb") as f:
            f.truncate(volume.size * GIB)

    def delete_volume(self, volume):
        for p in (_vol_path(volume), _vol_path(volume) + ".fail-attach"):
            if os.path.exists(p):
                os.remove(p)

    def extend_volume(self, volume, new_size):
        with open(_vol_path(volume), "r+b") as f:
            f.truncate(new_size * GIB)

    def create_snapshot(self, snapshot):
        if "fail-snapshot" in _name(snapshot.volume):
            raise exception.VolumeDriverException(
                message="cairn test driver: snapshot refused by marker")
        _copy(_vol_path(snapshot.volume), _snap_path(snapshot),
              snapshot.volume_size)

    def delete_snapshot(self, snapshot):
        if os.path.exists(_snap_path(snapshot)):
            os.remove(_snap_path(snapshot))

    def create_volume_from_snapshot(self, volume, snapshot):
        _copy(_snap_path(snapshot), _vol_path(volume), volume.size)
        if "fail-attach" in _name(snapshot.volume):
            open(_vol_path(volume) + ".fail-attach", "w").close()

    def create_cloned_volume(self, volume, src_vol):
        _copy(_vol_path(src_vol), _vol_path(volume), volume.size)

    def validate_connector(self, connector):
        pass

    def create_export(self, context, volume, connector):
        pass

    def ensure_export(self, context, volume):
        pass

    def remove_export(self, context, volume):
        pass

    def initialize_connection(self, volume, connector):
        if os.path.exists(_vol_path(volume) + ".fail-attach"):
            raise exception.VolumeDriverException(
                message="cairn test driver: attachment refused by marker")
        return {"driver_volume_type": "local",
                "data": {"device_path": _vol_path(volume),
                         "access_mode": "rw"}}

    def terminate_connection(self, volume, connector, **kwargs):
        pass

    def _update_volume_stats(self):
        super()._update_volume_stats()
        self._stats["volume_backend_name"] = self.backend_name
        self._stats["storage_protocol"] = self.protocol
        for pool in self._stats["pools"]:
            pool["pool_name"] = self.backend_name
            pool["reserved_percentage"] = 0
            pool["thin_provisioning_support"] = True

package index

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// DiskPrint is what a restore point's fingerprint covers for one disk.
type DiskPrint struct {
	Key         string
	Capacity    int64
	BlockSize   int64
	Fingerprint string // hex SHA-256 of the disk's root node
}

// PointFingerprint combines the disks' fingerprints into the restore point's:
// SHA-256 over each disk's key, geometry and tree fingerprint, in order.
func PointFingerprint(disks []DiskPrint) string {
	h := sha256.New()
	var n [8]byte
	for _, d := range disks {
		binary.BigEndian.PutUint64(n[:], uint64(len(d.Key)))
		h.Write(n[:])
		h.Write([]byte(d.Key))
		binary.BigEndian.PutUint64(n[:], uint64(d.Capacity))
		h.Write(n[:])
		binary.BigEndian.PutUint64(n[:], uint64(d.BlockSize))
		h.Write(n[:])
		h.Write([]byte(d.Fingerprint))
	}
	return hex.EncodeToString(h.Sum(nil))
}

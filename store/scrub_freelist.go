package store

import (
	"encoding/binary"
	"hash/fnv"
	"io"
	"slices"
)

// bbolt's on-disk layout, as far as freelistIDs reads it (go.etcd.io/bbolt
// internal/common: page.go, meta.go). Integers are little-endian, as bbolt
// writes them on every platform this binary is built for.
const (
	boltPageHeader   = 16 // id u64, flags u16, count u16, overflow u32
	boltMetaFields   = 56 // magic … txid, the bytes the checksum covers
	boltMetaFreelist = 32 // offset of the freelist's page id among them
	boltMetaTxid     = 48 // offset of the transaction id
	boltMagic        = 0xED0CDAED
	boltFreelistFlag = 0x10
	boltNoFreelist   = ^uint64(0) // meta.freelist when the freelist is not synced
)

// freelistIDs reads, with pread on f, the page ids on the freelist of the
// file's current meta page: every free and pending page as of the last
// commit, which is the freelist bbolt holds while the caller has the
// writer lock. ok is false when the file does not look as expected (then
// the caller asks bbolt page by page instead); every id is still checked
// against bbolt before a page is overwritten.
func freelistIDs(f io.ReaderAt, pageSize int64) (ids []uint64, ok bool) {
	var best struct {
		txid, freelist uint64
		found          bool
	}
	meta := make([]byte, boltPageHeader+boltMetaFields+8)
	for i := range int64(2) {
		if _, err := f.ReadAt(meta, i*pageSize); err != nil {
			return nil, false
		}
		fields := meta[boltPageHeader:]
		if binary.LittleEndian.Uint32(fields) != boltMagic {
			continue
		}
		h := fnv.New64a()
		h.Write(fields[:boltMetaFields])
		if h.Sum64() != binary.LittleEndian.Uint64(fields[boltMetaFields:]) {
			continue
		}
		txid := binary.LittleEndian.Uint64(fields[boltMetaTxid:])
		if !best.found || txid > best.txid {
			best.txid, best.freelist, best.found = txid, binary.LittleEndian.Uint64(fields[boltMetaFreelist:]), true
		}
	}
	if !best.found || best.freelist == boltNoFreelist {
		return nil, false
	}
	header := make([]byte, boltPageHeader+8)
	if _, err := f.ReadAt(header, int64(best.freelist)*pageSize); err != nil {
		return nil, false
	}
	if binary.LittleEndian.Uint16(header[8:]) != boltFreelistFlag {
		return nil, false
	}
	count, start := int64(binary.LittleEndian.Uint16(header[10:])), int64(boltPageHeader)
	if count == 0xFFFF { // the real count is the first element
		count, start = int64(binary.LittleEndian.Uint64(header[boltPageHeader:])), boltPageHeader+8
	}
	overflow := int64(binary.LittleEndian.Uint32(header[12:]))
	if start+count*8 > (overflow+1)*pageSize {
		return nil, false
	}
	list := make([]byte, count*8)
	if _, err := f.ReadAt(list, int64(best.freelist)*pageSize+start); err != nil {
		return nil, false
	}
	ids = make([]uint64, count)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint64(list[i*8:])
	}
	slices.Sort(ids)
	return ids, true
}

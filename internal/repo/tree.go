package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/backup-runner/runner/internal/repo/pack"
)

// NodeType is the kind of a directory entry.
type NodeType uint8

// Node types, with their on-disk values.
const (
	NodeFile       NodeType = 1
	NodeDir        NodeType = 2
	NodeSymlink    NodeType = 3
	NodeDevice     NodeType = 4 // block device
	NodeCharDevice NodeType = 5
	NodeFIFO       NodeType = 6
	NodeSocket     NodeType = 7
)

func (t NodeType) String() string {
	switch t {
	case NodeFile:
		return "file"
	case NodeDir:
		return "dir"
	case NodeSymlink:
		return "symlink"
	case NodeDevice:
		return "device"
	case NodeCharDevice:
		return "chardevice"
	case NodeFIFO:
		return "fifo"
	case NodeSocket:
		return "socket"
	}
	return fmt.Sprintf("nodetype(%d)", uint8(t))
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Node is one entry of a directory listing (a tree). Strings hold raw bytes
// (file names on Linux need not be UTF-8); the encoding keeps them exactly.
type Node struct {
	Name string
	Type NodeType
	// Mode holds the permission bits plus setuid, setgid and sticky (07777).
	Mode       uint32
	UID, GID   uint32
	User       string // owner name at backup time, for restore by name
	Group      string
	ModTime    int64 // Unix nanoseconds
	ChangeTime int64 // Unix nanoseconds
	Size       uint64
	LinkTarget string // symlinks only
	Rdev       uint64 // device nodes only
	// Hardlink identity: archivers set Device, Inode and Links only for
	// files with more than one link (so that trees of ordinary files stay
	// identical across backups and deduplicate); a restorer links together
	// the nodes of one snapshot that share (Device, Inode).
	Device, Inode, Links uint64
	Xattrs               []Xattr // sorted by name
	Content              []ID    // data blobs, files only
	Subtree              ID      // directories only
}

// Tree encoding (see docs/REPOSITORY.md): "RTR" 0x01, uvarint node count,
// then each node's fields in the order of the Node struct. Decoding rejects
// anything the encoder would not produce (unsorted names, non-minimal
// varints, trailing bytes), so encode(decode(b)) == b: the encoding is
// canonical, and identical directories give identical tree blobs.
const treeMagic = "RTR\x01"

// Limits that keep a hostile tree from claiming absurd sizes.
const (
	maxNameLen  = 64 << 10
	maxXattrLen = 64 << 20
)

func validName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\x00") || len(n) > maxNameLen {
		return fmt.Errorf("invalid node name %q", n)
	}
	return nil
}

// Validate checks one node's fields for consistency.
func (n *Node) Validate() error {
	if err := validName(n.Name); err != nil {
		return err
	}
	if n.Type < NodeFile || n.Type > NodeSocket {
		return fmt.Errorf("node %q: invalid type %d", n.Name, n.Type)
	}
	if n.Mode&^0o7777 != 0 {
		return fmt.Errorf("node %q: mode %o has bits beyond 07777", n.Name, n.Mode)
	}
	if (n.Type == NodeDir) == n.Subtree.IsZero() {
		return fmt.Errorf("node %q: a directory needs a subtree, and only a directory may have one", n.Name)
	}
	if n.Type != NodeFile && len(n.Content) > 0 {
		return fmt.Errorf("node %q: only files have content", n.Name)
	}
	if (n.Type == NodeSymlink) == (n.LinkTarget == "") {
		return fmt.Errorf("node %q: a symlink needs a target, and only a symlink may have one", n.Name)
	}
	for i, x := range n.Xattrs {
		if x.Name == "" || len(x.Name) > maxNameLen || len(x.Value) > maxXattrLen {
			return fmt.Errorf("node %q: invalid xattr %q", n.Name, x.Name)
		}
		if i > 0 && n.Xattrs[i-1].Name >= x.Name {
			return fmt.Errorf("node %q: xattrs not sorted or duplicated at %q", n.Name, x.Name)
		}
	}
	return nil
}

// EncodeTree returns the canonical encoding of nodes. The nodes are sorted
// by name (and xattrs of each node by name) on a copy; duplicate names and
// invalid nodes are errors.
func EncodeTree(nodes []Node) ([]byte, error) {
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	b := append([]byte{}, treeMagic...)
	b = binary.AppendUvarint(b, uint64(len(sorted)))
	for i := range sorted {
		n := &sorted[i]
		if len(n.Xattrs) > 1 && !slices.IsSortedFunc(n.Xattrs, cmpXattr) {
			n.Xattrs = slices.Clone(n.Xattrs)
			slices.SortFunc(n.Xattrs, cmpXattr)
		}
		if err := n.Validate(); err != nil {
			return nil, err
		}
		if i > 0 && sorted[i-1].Name == n.Name {
			return nil, fmt.Errorf("duplicate node name %q", n.Name)
		}
		b = appendNode(b, n)
	}
	return b, nil
}

func cmpXattr(a, b Xattr) int { return strings.Compare(a.Name, b.Name) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendNode(b []byte, n *Node) []byte {
	b = appendString(b, n.Name)
	b = append(b, byte(n.Type))
	b = binary.AppendUvarint(b, uint64(n.Mode))
	b = binary.AppendUvarint(b, uint64(n.UID))
	b = binary.AppendUvarint(b, uint64(n.GID))
	b = appendString(b, n.User)
	b = appendString(b, n.Group)
	b = binary.AppendVarint(b, n.ModTime)
	b = binary.AppendVarint(b, n.ChangeTime)
	b = binary.AppendUvarint(b, n.Size)
	b = appendString(b, n.LinkTarget)
	b = binary.AppendUvarint(b, n.Rdev)
	b = binary.AppendUvarint(b, n.Device)
	b = binary.AppendUvarint(b, n.Inode)
	b = binary.AppendUvarint(b, n.Links)
	b = binary.AppendUvarint(b, uint64(len(n.Xattrs)))
	for _, x := range n.Xattrs {
		b = appendString(b, x.Name)
		b = binary.AppendUvarint(b, uint64(len(x.Value)))
		b = append(b, x.Value...)
	}
	b = binary.AppendUvarint(b, uint64(len(n.Content)))
	for _, id := range n.Content {
		b = append(b, id[:]...)
	}
	if n.Subtree.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	return append(b, n.Subtree[:]...)
}

// treeReader decodes with strict checks; the first error sticks.
type treeReader struct {
	b   []byte
	err error
}

func (r *treeReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("tree: "+format+": %w", append(args, pack.ErrFormat)...)
	}
}

func (r *treeReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad %s", what)
		return 0
	}
	// Minimal encoding only: otherwise two encodings of one tree could exist.
	if n != len(binary.AppendUvarint(nil, v)) {
		r.fail("non-minimal %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *treeReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 || n != len(binary.AppendVarint(nil, v)) {
		r.fail("bad %s", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *treeReader) u32(what string) uint32 {
	v := r.uvarint(what)
	if v > 1<<32-1 {
		r.fail("%s %d out of range", what, v)
		return 0
	}
	return uint32(v)
}

func (r *treeReader) bytes(what string, limit int) []byte {
	n := r.uvarint(what + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) || n > uint64(len(r.b)) {
		r.fail("%s of %d bytes", what, n)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *treeReader) byte1(what string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.fail("truncated at %s", what)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *treeReader) id(what string) (id ID) {
	if r.err != nil {
		return id
	}
	if len(r.b) < len(id) {
		r.fail("truncated %s", what)
		return id
	}
	copy(id[:], r.b)
	r.b = r.b[len(id):]
	return id
}

// DecodeTree parses a tree blob. It accepts exactly what EncodeTree
// produces and never panics on bad input.
func DecodeTree(b []byte) ([]Node, error) {
	if !bytes.HasPrefix(b, []byte(treeMagic)) {
		return nil, fmt.Errorf("tree: bad magic: %w", pack.ErrFormat)
	}
	r := &treeReader{b: b[len(treeMagic):]}
	count := r.uvarint("node count")
	// Every node takes at least 19 bytes; do not trust count beyond that.
	if count > uint64(len(r.b))/19 {
		r.fail("%d nodes cannot fit in %d bytes", count, len(r.b))
	}
	if r.err != nil {
		return nil, r.err
	}
	nodes := make([]Node, 0, count)
	for i := uint64(0); i < count && r.err == nil; i++ {
		var n Node
		n.Name = string(r.bytes("name", maxNameLen))
		n.Type = NodeType(r.byte1("type"))
		n.Mode = r.u32("mode")
		n.UID = r.u32("uid")
		n.GID = r.u32("gid")
		n.User = string(r.bytes("user", maxNameLen))
		n.Group = string(r.bytes("group", maxNameLen))
		n.ModTime = r.varint("mtime")
		n.ChangeTime = r.varint("ctime")
		n.Size = r.uvarint("size")
		n.LinkTarget = string(r.bytes("link target", maxNameLen))
		n.Rdev = r.uvarint("rdev")
		n.Device = r.uvarint("device")
		n.Inode = r.uvarint("inode")
		n.Links = r.uvarint("links")
		nx := r.uvarint("xattr count")
		if nx > uint64(len(r.b))/2 {
			r.fail("%d xattrs cannot fit", nx)
		}
		for j := uint64(0); j < nx && r.err == nil; j++ {
			name := string(r.bytes("xattr name", maxNameLen))
			val := r.bytes("xattr value", maxXattrLen)
			n.Xattrs = append(n.Xattrs, Xattr{Name: name, Value: bytes.Clone(val)})
		}
		nc := r.uvarint("content count")
		if nc > uint64(len(r.b))/32 {
			r.fail("%d content ids cannot fit", nc)
		}
		if r.err == nil && nc > 0 {
			n.Content = make([]ID, nc)
			for j := range n.Content {
				n.Content[j] = r.id("content id")
			}
		}
		switch r.byte1("subtree flag") {
		case 0:
		case 1:
			n.Subtree = r.id("subtree id")
			if r.err == nil && n.Subtree.IsZero() {
				r.fail("node %q: zero subtree id", n.Name)
			}
		default:
			r.fail("node %q: bad subtree flag", n.Name)
		}
		if r.err != nil {
			break
		}
		if err := n.Validate(); err != nil {
			return nil, fmt.Errorf("tree: %w: %w", pack.ErrFormat, err)
		}
		if len(nodes) > 0 && nodes[len(nodes)-1].Name >= n.Name {
			return nil, fmt.Errorf("tree: node %q out of order or duplicated: %w", n.Name, pack.ErrFormat)
		}
		nodes = append(nodes, n)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("tree: %d trailing bytes: %w", len(r.b), pack.ErrFormat)
	}
	return nodes, nil
}

// SaveTree encodes nodes canonically and saves them as a tree blob.
func (r *Repository) SaveTree(ctx context.Context, nodes []Node) (ID, error) {
	b, err := EncodeTree(nodes)
	if err != nil {
		return ID{}, fmt.Errorf("save tree: %w", err)
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, b)
	return id, err
}

// LoadTree loads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) ([]Node, error) {
	b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	nodes, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w: %w", id, ErrCorrupt, err)
	}
	return nodes, nil
}

// Package archiver is runner's fast path between file systems and a
// repository (package repo): it captures file trees and byte streams into
// snapshot items, and restores them.
//
// # Trees of items
//
// A tree item (repo.ItemTree) captured from TreeSpec.Root names a tree that
// holds exactly one node: the root itself, named filepath.Base(Root) ("root"
// for "/"). It is a directory node with the root's own metadata and its
// listing as subtree, or, when Root is a file, that file's node. Restoring
// the item into dst recreates dst/<that name>; Include paths are relative
// to that node ("site/index.php", not "www/site/index.php"). Keeping the
// root as a node, rather than making the item's tree the root's listing,
// means the root directory's mode, owner, times and xattrs are restored
// too, and a single file can be an item.
//
// # Backup pipeline
//
// Tree runs one walker goroutine, a prefetcher, a few file workers, a
// pool of chunk savers and one tree saver, all owned by the call and
// stopped on the first fatal error or when the context ends:
//
//	walker --files--> prefetcher --open files--> file workers --chunks--> chunk savers
//	   \                                                                   |
//	    --directories, post-order--> tree saver <-- slots filled -----------
//
// The walker does a depth-first walk with sorted listings and one lstat
// (fstatat) per entry; a few listers read the directories it will come to
// next (listing and stat'ing their entries) in parallel, ahead of it, in
// the walk's order (listing.go). Symlinks, devices and files unchanged since the
// previous run (the change cache) are captured by the walker itself;
// other regular files go to the prefetcher, which opens them and asks the
// kernel to start reading them (FADV_WILLNEED) so that the disk works
// while the workers hash and compress, then to the workers, which read and
// chunk them and save the chunks, handing some to the chunk savers so that
// one large file keeps every core busy. Each directory has one slot per
// entry; after listing a directory (and walking its subdirectories) the
// walker queues it for the tree saver, which waits until the directory's
// files are saved, saves its tree and fills the directory's slot in its
// parent. Memory is bounded: a fixed number of chunk buffers, bounded
// queues of files, the listings of the directories on the current path,
// and a bounded number of listings read ahead. The bytes asked of the kernel ahead of the workers are bounded
// too; they go to the page cache, not into this process.
//
// An entry that cannot be read (open, read or stat fails) is left out,
// counted in Stats.Errors and listed in Stats.Unreadable; the caller marks
// the snapshot partial. An entry deleted between the listing and the read
// is only a warning: the snapshot is then as if taken a moment later. Only
// repository failures, an unreadable root and cancellation fail Tree.
//
// # Change cache
//
// The cache maps a file's absolute path to its size, mtime, ctime, inode,
// device, chunk ids and xattrs. A file whose lstat matches, and whose
// chunks are all still in the repository, is captured without being
// opened. ctime changes with any content or metadata change (including
// xattrs), which is why the xattrs can come from the cache. Files modified
// within a couple of seconds of being read are not cached, since a write
// in the same timestamp tick would not change the stat.
//
// # Restore
//
// Restore walks the item's trees, creates directories as it goes, queues
// files to workers (large files in segments of a few chunks, written at
// their offsets by several workers), creates symlinks, FIFOs, sockets and
// (as root) device nodes, then makes hard links (nodes of one restore that
// share device and inode are linked to the first one restored) and finally
// applies directory metadata deepest first. Every chunk is verified
// against its id by repo.LoadBlob before it is written.
package archiver

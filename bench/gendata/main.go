// Command gendata generates the benchmark datasets deterministically from a
// seed, changes about 1% of them deterministically, undoes that change, and
// samples the peak resident memory of a process tree for bench/run.
//
//	gendata gen    -kind site|small -dir DIR [-seed N] [-quick] [-workers N]
//	gendata mutate -kind site|small -dir DIR [-seed N] [-quick]
//	gendata revert -kind site|small -dir DIR [-seed N] [-quick]
//	gendata rsswatch -pid PID [-o FILE] [-interval 100ms]
//
// The same kind, seed and -quick always describe the same files: paths,
// sizes, contents, modes, owners and modification times (to the
// nanosecond). The "site" kind generates only the synthetic part of the
// site dataset; bench/gen-dataset copies Debian's /usr/share/wordpress next
// to it first.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, `usage:
  gendata gen    -kind site|small -dir DIR [-seed N] [-quick] [-workers N]
  gendata mutate -kind site|small -dir DIR [-seed N] [-quick]
  gendata revert -kind site|small -dir DIR [-seed N] [-quick]
  gendata rsswatch -pid PID [-o FILE] [-interval 100ms]`)
	os.Exit(2)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "gen", "mutate", "revert":
		err = datasetCmd(cmd, args)
	case "rsswatch":
		err = rssWatchCmd(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "gendata %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func datasetCmd(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	kind := fs.String("kind", "", "dataset kind: site or small")
	dir := fs.String("dir", "", "dataset directory")
	seed := fs.Uint64("seed", 1, "seed")
	quick := fs.Bool("quick", false, "tiny version of the dataset")
	workers := fs.Int("workers", 2, "files written in parallel")
	_ = fs.Parse(args)
	if *dir == "" || (*kind != "site" && *kind != "small") {
		usage()
	}
	ds := buildDataset(*kind, *seed, *quick)
	start := time.Now()
	switch cmd {
	case "gen":
		if err := ds.generate(*dir, *workers); err != nil {
			return err
		}
		var total int64
		n := 0
		for _, f := range ds.Files {
			if f.Symlink == "" && f.HardlinkOf < 0 {
				total += f.Size
				n++
			}
		}
		fmt.Printf("generated %s (seed %d%s): %d files, %d symlinks/hardlinks, %d dirs, %.1f MiB in %.1fs\n",
			*kind, *seed, quickNote(*quick), n, len(ds.Files)-n, len(ds.Dirs), float64(total)/(1<<20), time.Since(start).Seconds())
	case "mutate":
		st, err := ds.mutate(*dir)
		if err != nil {
			return err
		}
		fmt.Printf("changed %s: modified %d files (%.2f MiB written), added %d files (%.2f MiB), deleted %d files (%.2f MiB); %.2f%% of %.1f MiB\n",
			*kind, st.modified, mib(st.modBytes), st.added, mib(st.addBytes), st.deleted, mib(st.delBytes),
			100*float64(st.modBytes+st.addBytes+st.delBytes)/float64(st.total), mib(st.total))
	case "revert":
		if err := ds.revert(*dir); err != nil {
			return err
		}
		fmt.Printf("reverted %s to its generated state\n", *kind)
	}
	return nil
}

func quickNote(q bool) string {
	if q {
		return ", quick"
	}
	return ""
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

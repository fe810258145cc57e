package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"

	config "github.com/backup-runner/runner/hcl"
)

type fmtOptions struct {
	check bool
	diff  bool
}

func init() {
	var o fmtOptions
	register(&command{
		name:  "fmt",
		args:  "[FILE|DIR ...]",
		short: "Rewrite configuration files in canonical style",
		long: `Formats the *.hcl files of the configuration directory (-C), or the files and
directories given, in place. With -check nothing is written.

EXIT STATUS
  0  all files are formatted (or were rewritten)
  1  a file could not be read or parsed
  2  with -check: some files need formatting (they are listed)`,
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&o.check, "check", false, "only check; list files that need formatting and exit 2")
			fs.BoolVar(&o.diff, "diff", false, "print the lines formatting changes")
		},
		run: func(ctx context.Context, g *globals, args []string) error { return runFmt(ctx, g, o, args) },
	})
}

func runFmt(_ context.Context, g *globals, o fmtOptions, args []string) error {
	if len(args) == 0 {
		args = []string{g.dir}
	}
	var files []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		if !st.IsDir() {
			files = append(files, a)
			continue
		}
		fs, err := config.ConfigFiles(a)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		files = append(files, fs...)
	}
	var changed []string
	var diags hcl.Diagnostics
	for _, f := range files {
		r, ds := config.FormatFile(f)
		diags = append(diags, ds...)
		if ds.HasErrors() || !r.Changed() {
			continue
		}
		changed = append(changed, f)
		if o.diff {
			fmt.Fprint(g.stdout, lineDiff(f, string(r.Original), string(r.Formatted)))
		}
		if !o.check {
			if err := writeFileAtomic(f, r.Formatted); err != nil {
				return err
			}
		}
	}
	if g.json {
		_ = json.NewEncoder(g.stdout).Encode(map[string]any{"changed": nonNil(changed), "diagnostics": config.ToJSON(diags)})
	} else {
		if len(diags) > 0 {
			_ = config.WriteDiagnostics(g.stderr, nil, diags, 100, g.color())
		}
		if !o.diff {
			for _, f := range changed {
				fmt.Fprintln(g.stdout, f)
			}
		}
	}
	if diags.HasErrors() {
		return silentExit(exitError)
	}
	if o.check && len(changed) > 0 {
		return silentExit(exitChanges)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new file, never half of one.
func writeFileAtomic(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}

// lineDiff shows what formatting changes, line by line (a longest common
// subsequence; config files are small, so quadratic time is fine). Lines
// are numbered as in the original (-) and formatted (+) file.
func lineDiff(name, a, b string) string {
	al, bl := strings.SplitAfter(a, "\n"), strings.SplitAfter(b, "\n")
	n, m := len(al), len(bl)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if al[i] == bl[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s (formatted)\n", name, name)
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && al[i] == bl[j]:
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&sb, "-%d: %s\n", i+1, strings.TrimSuffix(al[i], "\n"))
			i++
		default:
			fmt.Fprintf(&sb, "+%d: %s\n", j+1, strings.TrimSuffix(bl[j], "\n"))
			j++
		}
	}
	return sb.String()
}

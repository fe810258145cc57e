package main

import (
	"context"
	"encoding/json"
	"fmt"
)

func init() {
	register(&command{
		name:  "init",
		args:  "TARGET",
		short: "Create the repository on a target",
		long: `Creates an empty repository on a target, e.g. runner init target.nas.home. The
target's hooks run and the target is prepared (and verified) as for a backup.
The repository is encrypted when the target sets password_file (a file only its
owner may read); without it the repository is NOT encrypted, and init says so.
An existing repository is never touched.

EXIT STATUS
  0  created
  1  not created (the reason is printed)`,
		run: runInit,
	})
}

func runInit(ctx context.Context, g *globals, args []string) error {
	if len(args) != 1 {
		return usageError("init takes one target address, e.g. target.nas.home")
	}
	l, err := g.load(ctx)
	if l != nil {
		defer l.close()
	}
	if err != nil {
		return err
	}
	t := l.cfg.Instance(args[0])
	if t == nil || t.Block.Kind.String() != "target" {
		var known []string
		for _, b := range l.cfg.Targets {
			for _, in := range b.Instances {
				known = append(known, in.Address)
			}
		}
		return fmt.Errorf("no target %q in the configuration (targets: %v)", args[0], known)
	}
	res, err := l.engine(g).InitRepository(ctx, t)
	if err != nil {
		return err
	}
	if g.json {
		return json.NewEncoder(g.stdout).Encode(res)
	}
	where := ""
	if res.Where != "" {
		where = " in " + res.Where
	}
	enc := "encrypted (AES-256-GCM, key from password_file through Argon2id)"
	if !res.Encrypted {
		enc = "NOT encrypted: anyone who can read the target can read the backups (set password_file on the target to encrypt)"
	}
	_, err = fmt.Fprintf(g.stdout, "Created repository %s on %s%s, %s.\n", res.ID, res.Target, where, enc)
	return err
}

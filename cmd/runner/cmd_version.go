package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
)

func init() {
	register(&command{
		name:  "version",
		short: "Print runner's version",
		run:   runVersion,
	})
}

func runVersion(_ context.Context, g *globals, _ []string) error {
	if g.json {
		return json.NewEncoder(g.stdout).Encode(map[string]string{"version": version, "go": runtime.Version()})
	}
	_, err := fmt.Fprintf(g.stdout, "runner %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

// Command plugmain is the test plugin as an external executable. Built as
// runner-plugin-NAME, it serves testplugin.New(NAME).
package main

import (
	"os"

	"github.com/backup-runner/runner/plugins/host/internal/testplugin"
	"github.com/backup-runner/runner/plugins/sdk"
)

func main() {
	name := testplugin.NameFromExe(os.Args[0])
	testplugin.Mark(name)
	sdk.Serve(testplugin.New(name))
}

//go:build !linux

package priority

import "errors"

func lower(int) error { return errors.New("lowering the priority is only supported on Linux") }

// Nice is not supported outside Linux.
func Nice() (int, error) { return 0, errors.New("reading the priority is only supported on Linux") }

//go:build !linux

package priority

import "errors"

func lower(int) error { return errors.New("lowering the priority is only supported on Linux") }

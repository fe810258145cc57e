package sdk

import "io"

// DrainItems reads every remaining item of r to its end: what an Apply that
// does not use the items (a dry run) must do, since the host expects each
// item it sends to be read.
func DrainItems(r ItemReader) error {
	for {
		_, body, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if body != nil {
			if _, err := io.Copy(io.Discard, body); err != nil {
				return err
			}
		}
	}
}

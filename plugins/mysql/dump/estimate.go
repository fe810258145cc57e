package dump

import (
	"context"
	"strconv"
)

// TableEstimate is information_schema's idea of a table's size.
type TableEstimate struct {
	Database, Table, Engine string
	Rows, Bytes             int64
}

// Estimate lists, read-only, the tables a dump with this filter would
// hold, with information_schema's (approximate) row counts and sizes.
func Estimate(ctx context.Context, conn ConnOptions, f Filter) ([]TableEstimate, error) {
	if err := f.Check(); err != nil {
		return nil, err
	}
	s, err := connect(ctx, conn)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := setupSession(s); err != nil {
		return nil, err
	}
	rows, err := s.rows("SELECT TABLE_SCHEMA, TABLE_NAME, IFNULL(ENGINE, ''), IFNULL(TABLE_ROWS, 0), IFNULL(DATA_LENGTH, 0) FROM information_schema.TABLES WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY TABLE_SCHEMA, TABLE_NAME")
	if err != nil {
		return nil, err
	}
	var out []TableEstimate
	for _, r := range rows {
		if !f.Table(r[0], r[1]) {
			continue
		}
		e := TableEstimate{Database: r[0], Table: r[1], Engine: r[2]}
		e.Rows, _ = strconv.ParseInt(r[3], 10, 64)
		e.Bytes, _ = strconv.ParseInt(r[4], 10, 64)
		out = append(out, e)
	}
	return out, nil
}

// ItemName is the name of a table's first item.
func ItemName(db, table string) string { return itemName(db, table, 1) }

package dump

import (
	"encoding/json"
	"fmt"
	"github.com/backup-runner/runner/plugins/sdk"
	"io"
	"strings"
)

// Format names the dump format; it is in every item's meta.
const Format = "runner-mysql-sql/1"

// Item meta keys (sdk.Item.Meta of every item a dump writes).
const (
	MetaFormat   = "mysql.format"   // Format
	MetaKind     = "mysql.kind"     // KindTable, KindObjects or KindUsers
	MetaDatabase = "mysql.database" // the database the item belongs to
	MetaTable    = "mysql.table"    // the table (KindTable)
	MetaPart     = "mysql.part"     // 1-based part of a table split by primary key range
	MetaParts    = "mysql.parts"    // how many parts the table has
)

// Item kinds.
const (
	KindTable   = "table"   // CREATE TABLE (part 1) and rows
	KindObjects = "objects" // views, triggers, routines and events of one database
	KindUsers   = "users"   // accounts and grants
)

// Snapshot meta keys (sdk.CaptureResult.Meta).
const (
	MetaManifest      = "mysql.manifest" // JSON Manifest
	MetaServerVersion = "mysql.server_version"
	MetaBinlogFile    = "mysql.binlog_file"
	MetaBinlogPos     = "mysql.binlog_pos"
	MetaGTID          = "mysql.gtid"
	MetaDatabases     = "mysql.databases" // comma-separated
	MetaNonTx         = "mysql.nontransactional_tables"
)

// Item is the header of one item a dump writes.
type Item struct {
	Name string
	Meta map[string]string
}

// ItemWriter receives an item's bytes; sdk.StreamWriter is one.
type ItemWriter interface {
	io.Writer
	Close() error
	CloseWithError(error) error
}

// Sink starts the next item. Dump calls it from one goroutine, one item
// at a time, in a deterministic order: per database its tables (parts in
// order), then its objects; users last.
type Sink func(Item) (ItemWriter, error)

// Manifest describes a dump as a whole; it is what a load verifies
// against.
type Manifest struct {
	Format     string     `json:"format"`
	Server     string     `json:"server"` // SELECT VERSION()
	BinlogFile string     `json:"binlog_file,omitempty"`
	BinlogPos  uint64     `json:"binlog_pos,omitempty"`
	GTID       string     `json:"gtid,omitempty"`
	Databases  []Database `json:"databases"`
	Tables     []Table    `json:"tables"`
	UsersItem  string     `json:"users_item,omitempty"`
}

// Database is one dumped database.
type Database struct {
	Name        string `json:"name"`
	Charset     string `json:"charset"`
	Collation   string `json:"collation"`
	ObjectsItem string `json:"objects_item"`
}

// Table is one dumped table.
type Table struct {
	Database string `json:"db"`
	Name     string `json:"table"`
	Engine   string `json:"engine,omitempty"`
	Rows     int64  `json:"rows"`
	// Checksum is CHECKSUM TABLE's value in the snapshot ("" when not
	// taken).
	Checksum string   `json:"checksum,omitempty"`
	Items    []string `json:"items"`
}

// Encode returns the manifest as JSON.
func (m *Manifest) Encode() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// DecodeManifest reads a manifest written by Encode.
func DecodeManifest(s string) (*Manifest, error) {
	if s == "" {
		return nil, fmt.Errorf("the snapshot has no %s: it was not written by the mysql source", MetaManifest)
	}
	var m Manifest
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("the snapshot's %s is malformed: %v", MetaManifest, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("the snapshot's dump format is %q; this runner reads %q", m.Format, Format)
	}
	return &m, nil
}

// Meta returns the snapshot meta of a manifest: the manifest itself and
// the facts an operator looks for, as separate keys.
func (m *Manifest) Meta(nonTx []string) map[string]string {
	meta := map[string]string{
		MetaManifest:      m.Encode(),
		MetaServerVersion: m.Server,
	}
	if m.BinlogFile != "" {
		meta[MetaBinlogFile] = m.BinlogFile
		meta[MetaBinlogPos] = fmt.Sprint(m.BinlogPos)
	}
	if m.GTID != "" {
		meta[MetaGTID] = m.GTID
	}
	var dbs []string
	for _, d := range m.Databases {
		dbs = append(dbs, d.Name)
	}
	meta[MetaDatabases] = strings.Join(dbs, ",")
	if len(nonTx) > 0 {
		meta[MetaNonTx] = strings.Join(nonTx, ",")
	}
	meta[sdk.MetaSummary] = m.Summary()
	return meta
}

// Summary describes the dump in one line: its tables, databases and
// binlog position.
func (m *Manifest) Summary() string {
	var dbs []string
	for _, d := range m.Databases {
		dbs = append(dbs, d.Name)
	}
	s := fmt.Sprintf("%d tables of %s", len(m.Tables), strings.Join(dbs, ", "))
	if m.BinlogFile != "" {
		s += fmt.Sprintf(", binlog %s:%d", m.BinlogFile, m.BinlogPos)
	}
	return s
}

// itemName names an item: DB/TABLE, DB/TABLE:N for part N > 1,
// DB:objects, and :users. '%', '/' and ':' in names are percent-encoded,
// so names never collide.
func itemName(db, table string, part int) string {
	n := escapeName(db) + "/" + escapeName(table)
	if part > 1 {
		n += fmt.Sprintf(":%d", part)
	}
	return n
}

func objectsItemName(db string) string { return escapeName(db) + ":objects" }

const usersItemName = ":users"

func escapeName(s string) string {
	if !strings.ContainsAny(s, "%/:") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '%', '/', ':':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

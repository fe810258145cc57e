package hcl

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics renders diagnostics for people: each with its file,
// line, a source snippet and the enclosing block, as HCL prints them.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, width uint, color bool) error {
	return hcl.NewDiagnosticTextWriter(w, files, width, color).WriteDiagnostics(diags)
}

// JSONDiagnostic is the -json form of a diagnostic.
type JSONDiagnostic struct {
	Severity string     `json:"severity"`
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *JSONRange `json:"range,omitempty"`
}

// JSONRange locates a diagnostic; lines and columns count from 1.
type JSONRange struct {
	Filename string `json:"filename"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	EndLine  int    `json:"end_line"`
	EndCol   int    `json:"end_column"`
}

// ToJSON converts diagnostics to their -json form.
func ToJSON(diags hcl.Diagnostics) []JSONDiagnostic {
	out := make([]JSONDiagnostic, 0, len(diags))
	for _, d := range diags {
		jd := JSONDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if d.Subject != nil {
			r := d.Subject
			jd.Range = &JSONRange{Filename: r.Filename, Line: r.Start.Line, Column: r.Start.Column, EndLine: r.End.Line, EndCol: r.End.Column}
		}
		out = append(out, jd)
	}
	return out
}

// WriteJSONDiagnostics writes diagnostics as a JSON array.
func WriteJSONDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ToJSON(diags))
}

// Short renders one diagnostic as "file:line: summary: detail", the form
// the tests and log lines use.
func Short(d *hcl.Diagnostic) string {
	loc := ""
	if d.Subject != nil {
		loc = fmt.Sprintf("%s:%d: ", d.Subject.Filename, d.Subject.Start.Line)
	}
	if d.Detail == "" {
		return loc + d.Summary
	}
	return fmt.Sprintf("%s%s: %s", loc, d.Summary, d.Detail)
}

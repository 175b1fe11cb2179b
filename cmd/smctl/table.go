package main

import (
	"io"
	"strings"
	"unicode/utf8"
)

// table lays out rows in columns whose widths are computed over every
// row, so that each column starts at the same offset in every row
// whatever the lengths, and lines that are not rows (details under a row)
// can come between rows without breaking the alignment (text/tabwriter
// would start a new block of columns after each of them). Cells longer
// than their column's maximum are cut with "…". Not safe for concurrent
// use.
type table struct {
	indent string
	header []string
	max    []int  // per column: the most runes shown (0: no limit)
	right  []bool // per column: aligned to the right (numbers)
	rows   [][]string
	widths []int
}

// add appends a row; missing cells are empty.
func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// cell returns the text of cell i of row, cut to the column's maximum.
func (t *table) cell(row []string, i int) string {
	if i >= len(row) {
		return ""
	}
	s := row[i]
	if i < len(t.max) && t.max[i] > 0 && utf8.RuneCountInString(s) > t.max[i] {
		r := []rune(s)
		s = string(r[:t.max[i]-1]) + "…"
	}
	return s
}

// layout computes the column widths over the header and every row.
func (t *table) layout() {
	t.widths = make([]int, len(t.header))
	for _, row := range append([][]string{t.header}, t.rows...) {
		for i := range t.widths {
			t.widths[i] = max(t.widths[i], utf8.RuneCountInString(t.cell(row, i)))
		}
	}
}

// line formats row: columns two spaces apart, no trailing spaces.
func (t *table) line(row []string) string {
	if t.widths == nil {
		t.layout()
	}
	var b strings.Builder
	b.WriteString(t.indent)
	for i, w := range t.widths {
		s := t.cell(row, i)
		pad := strings.Repeat(" ", w-utf8.RuneCountInString(s))
		if i > 0 {
			b.WriteString("  ")
		}
		if i < len(t.right) && t.right[i] {
			b.WriteString(pad + s)
		} else {
			b.WriteString(s + pad)
		}
	}
	return strings.TrimRight(b.String(), " ") + "\n"
}

// write prints the header and every row, with after(i) (if not nil)
// printing what goes under row i.
func (t *table) write(w io.Writer, after func(i int)) {
	io.WriteString(w, t.line(t.header))
	for i, row := range t.rows {
		io.WriteString(w, t.line(row))
		if after != nil {
			after(i)
		}
	}
}

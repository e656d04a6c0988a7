package icalendar

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

var updatePlain = flag.Bool("update-plain", false,
	"rewrite "+plainTablePath+" (and the generated part of docs/ical-conformance.md) with the differences found; "+
		"new differences get the reason \""+plainTODO+"\", which a person must replace")

const (
	plainTablePath = "testdata/plain_deviations.json"
	plainDocPath   = "docs/ical-conformance.md"
	plainTODO      = "TODO: explain"

	// Exit codes of testdata/reference_plain.py.
	plainMissingPackages = 3
	plainLibraryFailed   = 4

	// plainWorkers bounds the Python processes run at once.
	plainWorkers = 2
)

// Kinds of difference between bmsgw and the unpatched libraries.
const (
	onlyBmsgw     = "only-bmsgw"
	onlyLibrary   = "only-library"
	libraryFailed = "library-failed"
)

// plainVerdicts start every reason and say who is right:
//   - "library wrong: " and "bmsgw wrong: " when RFC 5545 decides;
//   - "invalid input: " when the file breaks RFC 5545 and the RFC says
//     nothing about recovering (the reason says what each side does);
//   - "not RFC 5545: " when the meaning comes from another RFC (RFC 5546
//     iTIP streams) that the libraries do not implement.
var plainVerdicts = []string{"library wrong: ", "bmsgw wrong: ", "invalid input: ", "not RFC 5545: "}

// plainDifference is one line of output that bmsgw and the unpatched
// libraries do not share, or one window on which the libraries raised.
type plainDifference struct {
	// File is "ics-corpus/<dir>/<name>.ics" or "testdata/<name>.ics".
	File string `json:"file"`
	// Window is a referenceWindow name (see windowsFor).
	Window string `json:"window"`
	// Kind is onlyBmsgw, onlyLibrary or libraryFailed.
	Kind string `json:"kind"`
	// Line is the JSON record, or "library failed: <first line of the error>".
	Line string `json:"line"`
	// Reason names the RFC 5545 section and which side is right.
	Reason string `json:"reason"`
}

// key identifies a difference without its reason.
func (d plainDifference) key() string {
	return d.File + "\x00" + d.Window + "\x00" + d.Kind + "\x00" + d.Line
}

func (d plainDifference) String() string {
	return fmt.Sprintf("%s window %s %s:\n    %s", d.File, d.Window, d.Kind, d.Line)
}

// plainTable is the committed expectation, testdata/plain_deviations.json.
type plainTable struct {
	Comment     []string          `json:"comment"`
	Differences []plainDifference `json:"differences"`
}

var plainTableComment = []string{
	"Every line on which `bmsgw bookings expand --json` and testdata/reference_plain.py (Debian's python3-icalendar 4.0.3",
	"and python3-recurring-ical-events 2.0.1, used as they come) disagree, per file and window (see windowsFor in",
	"reference_test.go). TestAgainstUnpatchedLibraries fails when a difference appears or vanishes; regenerate with",
	"  go test ./adapters/bookings/icalendar/ -run TestAgainstUnpatchedLibraries -update-plain",
	"and replace every \"" + plainTODO + "\" with the reason: a verdict (\"library wrong: \", \"bmsgw wrong: \",",
	"\"invalid input: \" or \"not RFC 5545: \"), the RFC section and what each side does. Run -update-plain once more",
	"to regenerate docs/ical-conformance.md.",
}

// plainFileResult is what one file gave in every window.
type plainFileResult struct {
	file    string
	windows []plainWindowResult
}

type plainWindowResult struct {
	w          referenceWindow
	ours, lib  []string
	libraryErr string // the first line of the error when the libraries raised
}

// plainKey names a file in the table: relative to the corpus or to the
// package.
func plainKey(corpus, file string) string {
	if rel, err := filepath.Rel(corpus, file); err == nil && !strings.HasPrefix(rel, "..") {
		return "ics-corpus/" + filepath.ToSlash(rel)
	}
	return filepath.ToSlash(file)
}

// plainLines runs reference_plain.py once for all windows of a file.
func plainLines(t *testing.T, file string, windows []referenceWindow) []plainWindowResult {
	t.Helper()
	args := []string{filepath.Join("testdata", "reference_plain.py"), file, "--json"}
	for _, w := range windows {
		spec := w.from + "," + w.to
		if w.tz != "" {
			spec += "," + w.tz
		}
		args = append(args, "--window", spec)
	}
	cmd := exec.CommandContext(t.Context(), referencePython, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	res := make([]plainWindowResult, len(windows))
	for i, w := range windows {
		res[i].w = w
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == plainMissingPackages:
		t.Fatalf("reference_plain.py: %s\ninstall the packages with:\n  %s", stderr.String(), referenceInstall)
	case errors.As(err, &exit) && exit.ExitCode() == plainLibraryFailed:
		msg := strings.TrimPrefix(firstLine(stderr.String()), "reference_plain.py: ")
		for i := range res {
			res[i].libraryErr = msg
		}
		return res
	}
	require.NoError(t, err, "reference_plain.py failed on %s: %s", file, stderr.String())
	cur := -1
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#window "):
			n, err := strconv.Atoi(strings.TrimPrefix(line, "#window "))
			require.NoError(t, err, "reference_plain.py: bad header %q", line)
			require.Equal(t, cur+1, n, "reference_plain.py: windows out of order")
			cur = n
		case cur < 0:
			t.Fatalf("reference_plain.py printed %q before the first window header", line)
		case strings.HasPrefix(line, "#error "):
			res[cur].libraryErr = firstLine(strings.TrimPrefix(line, "#error "))
		case line != "":
			res[cur].lib = append(res[cur].lib, line)
		}
	}
	require.Equal(t, len(windows)-1, cur, "reference_plain.py did not answer every window")
	return res
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// multisetMinus returns the lines of a that b does not have, counting
// repeats, in a's order.
func multisetMinus(a, b []string) []string {
	left := map[string]int{}
	for _, l := range b {
		left[l]++
	}
	var out []string
	for _, l := range a {
		if left[l] > 0 {
			left[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

// differences lists what one file's windows disagree on, reasons empty.
func (r plainFileResult) differences() []plainDifference {
	var out []plainDifference
	for _, w := range r.windows {
		d := plainDifference{File: r.file, Window: w.w.name}
		if w.libraryErr != "" {
			d.Kind, d.Line = libraryFailed, "library failed: "+w.libraryErr
			out = append(out, d)
			continue
		}
		for _, l := range multisetMinus(w.ours, w.lib) {
			d.Kind, d.Line = onlyBmsgw, l
			out = append(out, d)
		}
		for _, l := range multisetMinus(w.lib, w.ours) {
			d.Kind, d.Line = onlyLibrary, l
			out = append(out, d)
		}
	}
	return out
}

var plainWindowOrder = map[string]int{"all": 0, "cut": 1, "new-york": 2}

func sortDifferences(ds []plainDifference) {
	slices.SortStableFunc(ds, func(a, b plainDifference) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(plainWindowOrder[a.Window], plainWindowOrder[b.Window]),
			cmp.Compare(a.Window, b.Window),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Line, b.Line),
		)
	})
}

func readPlainTable(t *testing.T) plainTable {
	t.Helper()
	data, err := os.ReadFile(plainTablePath)
	if errors.Is(err, os.ErrNotExist) && *updatePlain {
		return plainTable{}
	}
	require.NoError(t, err, "run with -update-plain to create it")
	var table plainTable
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&table), "%s", plainTablePath)
	return table
}

func writePlainTable(t *testing.T, table plainTable) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(table))
	require.NoError(t, os.WriteFile(plainTablePath, buf.Bytes(), 0o644))
}

// diffTable returns the differences found that the table lacks and the
// table's entries that no longer occur.
func diffTable(found, table []plainDifference) (added, vanished []plainDifference) {
	want := map[string]int{}
	for _, d := range table {
		want[d.key()]++
	}
	have := map[string]int{}
	for _, d := range found {
		have[d.key()]++
		if have[d.key()] > want[d.key()] {
			added = append(added, d)
		}
	}
	for _, d := range table {
		if have[d.key()] > 0 {
			have[d.key()]--
			continue
		}
		vanished = append(vanished, d)
	}
	return added, vanished
}

// withReasons gives the found differences the reasons the table has for
// them, and plainTODO otherwise.
func withReasons(found, table []plainDifference) []plainDifference {
	reasons := map[string][]string{}
	for _, d := range table {
		reasons[d.key()] = append(reasons[d.key()], d.Reason)
	}
	out := make([]plainDifference, len(found))
	for i, d := range found {
		d.Reason = plainTODO
		if rs := reasons[d.key()]; len(rs) > 0 {
			d.Reason, reasons[d.key()] = rs[0], rs[1:]
		}
		out[i] = d
	}
	return out
}

// checkReason returns why a reason is not acceptable, or "".
func checkReason(r string) string {
	switch {
	case strings.HasPrefix(r, "TODO"):
		return "still says " + strconv.Quote(r) + ": explain it"
	case !slices.ContainsFunc(plainVerdicts, func(v string) bool { return strings.HasPrefix(r, v) }):
		return fmt.Sprintf("must start with one of %q", plainVerdicts)
	case !strings.Contains(r, "RFC "):
		return "must cite the RFC section that decides it"
	case strings.ContainsAny(r, "\n\r"):
		return "must be one line"
	}
	return ""
}

var plainUpdateHint = fmt.Sprintf("If the change is intended, run\n"+
	"  go test ./adapters/bookings/icalendar/ -run TestAgainstUnpatchedLibraries -update-plain\n"+
	"then replace each %q in adapters/bookings/icalendar/%s with the reason: one of\n"+
	"%q, then the RFC section and what each side does;\n"+
	"run -update-plain again to regenerate %s.", plainTODO, plainTablePath, plainVerdicts, plainDocPath)

// TestAgainstUnpatchedLibraries expands every corpus and testdata file with
// Expand and with testdata/reference_plain.py, which uses Debian's
// python3-icalendar and python3-recurring-ical-events as they come, and
// requires the differences to be exactly those listed, with their reasons,
// in testdata/plain_deviations.json. TestAgreesWithReferenceImplementation
// is the strict check of bmsgw's rules; this one shows, without
// workarounds, where bmsgw and the libraries part ways and who is right.
func TestAgainstUnpatchedLibraries(t *testing.T) {
	requireReference(t)
	corpus := filepath.Join(moduleRoot(t), "..", "shared", "ics-corpus")
	files := referenceFiles(t)
	table := readPlainTable(t)
	expected := map[string][]plainDifference{}
	for _, d := range table.Differences {
		expected[d.File] = append(expected[d.File], d)
	}

	var (
		mu      sync.Mutex
		results []plainFileResult
	)
	sem := make(chan struct{}, plainWorkers)
	t.Run("files", func(t *testing.T) {
		for _, file := range files {
			key := plainKey(corpus, file)
			t.Run(key, func(t *testing.T) {
				t.Parallel()
				data, err := os.ReadFile(file)
				require.NoError(t, err)
				cal, err := Parse(bytes.NewReader(data))
				require.NoError(t, err)
				windows := windowsFor(t, cal)
				sem <- struct{}{}
				res := plainFileResult{file: key, windows: plainLines(t, file, windows)}
				<-sem
				for i := range res.windows {
					res.windows[i].ours = slices.DeleteFunc(ourLines(t, cal, windows[i]), func(l string) bool { return l == "" })
				}
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				if *updatePlain {
					return
				}
				added, vanished := diffTable(res.differences(), expected[key])
				for _, d := range added {
					t.Errorf("new difference with the unpatched libraries: %s", d)
				}
				for _, d := range vanished {
					t.Errorf("listed difference no longer occurs: %s\n    (reason was: %s)", d, d.Reason)
				}
				if len(added)+len(vanished) > 0 {
					t.Log(plainUpdateHint)
				}
			})
		}
	})
	if t.Failed() && !*updatePlain {
		return
	}
	if len(results) < len(files) {
		// -run selected some files only: their subtests compared them.
		require.False(t, *updatePlain, "-update-plain rewrites the whole table; run it without selecting files")
		t.Logf("%d of %d files compared; the table's reasons and %s are checked when all run", len(results), len(files), plainDocPath)
		return
	}
	slices.SortFunc(results, func(a, b plainFileResult) int { return cmp.Compare(a.file, b.file) })

	var found []plainDifference
	for _, r := range results {
		found = append(found, r.differences()...)
	}
	sortDifferences(found)
	if *updatePlain {
		table = plainTable{Comment: plainTableComment, Differences: withReasons(found, table.Differences)}
		writePlainTable(t, table)
	} else {
		// Differences of files that are gone, or that no subtest saw.
		added, vanished := diffTable(found, table.Differences)
		for _, d := range append(added, vanished...) {
			t.Errorf("the table and the run disagree on: %s", d)
		}
		if len(added)+len(vanished) > 0 {
			t.Fatal(plainUpdateHint)
		}
	}

	todo := 0
	for _, d := range table.Differences {
		if problem := checkReason(d.Reason); problem != "" {
			todo++
			if todo <= 20 {
				t.Errorf("%s: reason %s", d, problem)
			}
		}
	}
	if todo > 0 {
		t.Fatalf("%d differences in %s lack an acceptable reason; each must start with %q, cite the RFC section and say what each side does",
			todo, plainTablePath, plainVerdicts)
	}

	docPath := filepath.Join(moduleRoot(t), plainDocPath)
	doc, err := os.ReadFile(docPath)
	require.NoError(t, err)
	updated, err := replaceGenerated(string(doc), plainSummary(results, table.Differences))
	require.NoError(t, err, plainDocPath)
	if *updatePlain {
		require.NoError(t, os.WriteFile(docPath, []byte(updated), 0o644))
		return
	}
	require.Equal(t, updated, string(doc), "%s is stale; regenerate it with -update-plain", plainDocPath)
}

const (
	plainBegin = "<!-- BEGIN GENERATED by TestAgainstUnpatchedLibraries -update-plain; do not edit -->\n"
	plainEnd   = "<!-- END GENERATED -->\n"
)

// replaceGenerated puts body between the generated-content markers of doc.
func replaceGenerated(doc, body string) (string, error) {
	begin := strings.Index(doc, plainBegin)
	end := strings.Index(doc, plainEnd)
	if begin < 0 || end < begin {
		return "", fmt.Errorf("want a %q line followed by a %q line", strings.TrimSpace(plainBegin), strings.TrimSpace(plainEnd))
	}
	return doc[:begin+len(plainBegin)] + body + doc[end:], nil
}

// plainSummary is the generated part of docs/ical-conformance.md: the
// counts, the verdicts, and the differences per file grouped by reason.
func plainSummary(results []plainFileResult, table []plainDifference) string {
	var windows, failed, identical, ours, lib, same, unchecked int
	for _, r := range results {
		for _, w := range r.windows {
			windows++
			if w.libraryErr != "" {
				failed++
				unchecked += len(w.ours)
				continue
			}
			ours += len(w.ours)
			lib += len(w.lib)
			common := len(w.ours) - len(multisetMinus(w.ours, w.lib))
			same += common
			if common == len(w.ours) && common == len(w.lib) {
				identical++
			}
		}
	}
	var b strings.Builder
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| files | %d |\n", len(results))
	fmt.Fprintf(&b, "| windows (files × 3) | %d |\n", windows)
	fmt.Fprintf(&b, "| windows with identical output | %d |\n", identical)
	fmt.Fprintf(&b, "| windows on which the libraries raise | %d (bmsgw prints %d occurrences there) |\n", failed, unchecked)
	fmt.Fprintf(&b, "| occurrences compared in the other windows | bmsgw %d, libraries %d |\n", ours, lib)
	fmt.Fprintf(&b, "| identical lines | %d |\n", same)
	fmt.Fprintf(&b, "| lines only bmsgw prints | %d |\n", ours-same)
	fmt.Fprintf(&b, "| lines only the libraries print | %d |\n", lib-same)

	// One row per file and reason.
	type row struct {
		file, verdict, reason string
		windows               []string
		bmsgw, library        int
		raises                bool
	}
	var rows []*row
	byKey := map[string]*row{}
	for _, d := range table {
		k := d.File + "\x00" + d.Reason
		r := byKey[k]
		if r == nil {
			r = &row{file: d.File, reason: d.Reason}
			for _, v := range plainVerdicts {
				if rest, ok := strings.CutPrefix(d.Reason, v); ok {
					r.verdict, r.reason = strings.TrimSuffix(v, ": "), rest
				}
			}
			byKey[k] = r
			rows = append(rows, r)
		}
		if !slices.Contains(r.windows, d.Window) {
			r.windows = append(r.windows, d.Window)
		}
		switch d.Kind {
		case onlyBmsgw:
			r.bmsgw++
		case onlyLibrary:
			r.library++
		case libraryFailed:
			r.raises = true
		}
	}

	files := map[string]map[string]bool{}
	for _, r := range rows {
		if files[r.verdict] == nil {
			files[r.verdict] = map[string]bool{}
		}
		files[r.verdict][r.file] = true
	}
	b.WriteString("\n| verdict | files |\n|---|---|\n")
	for _, v := range plainVerdicts {
		v = strings.TrimSuffix(v, ": ")
		fmt.Fprintf(&b, "| %s | %d |\n", v, len(files[v]))
	}

	count := func(n int) string {
		if n == 0 {
			return "–"
		}
		return strconv.Itoa(n)
	}
	b.WriteString("\n| file | windows | only bmsgw | only libraries | verdict | reason |\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		library := count(r.library)
		if r.raises {
			library = "raise"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", r.file, strings.Join(r.windows, ", "),
			count(r.bmsgw), library, r.verdict, strings.ReplaceAll(r.reason, "|", `\|`))
	}
	if len(rows) == 0 {
		b.WriteString("| (none) | | | | | |\n")
	}
	return b.String()
}

// Command vulncheck backs `make vuln`. It has two subcommands:
//
//	vulncheck index -osv DIR -out DIR
//	    turns a folder of OSV JSON records (the data/osv folder of the Go
//	    vulnerability database's module) into the file layout govulncheck
//	    reads with -db file://DIR, so a scan needs only the Go module proxy;
//	vulncheck report -accepted FILE < govulncheck.json
//	    reads govulncheck's -format json stream and fails if any vulnerable
//	    symbol that permsync reaches has a fixed version, or has no fix and is
//	    not named in FILE (where each accepted advisory's mitigation is
//	    written down).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "index":
		fs := flag.NewFlagSet("index", flag.ExitOnError)
		osv := fs.String("osv", "", "folder of OSV JSON records")
		out := fs.String("out", "", "folder to write the database into")
		_ = fs.Parse(os.Args[2:])
		if *osv == "" || *out == "" {
			usage()
		}
		err = index(*osv, *out)
	case "report":
		fs := flag.NewFlagSet("report", flag.ExitOnError)
		accepted := fs.String("accepted", "", "file naming the advisories accepted without a fix")
		_ = fs.Parse(os.Args[2:])
		err = report(os.Stdin, os.Stdout, *accepted)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulncheck:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vulncheck index -osv DIR -out DIR | vulncheck report -accepted FILE < govulncheck.json")
	os.Exit(2)
}

// osvRecord is the part of an OSV record the index needs.
type osvRecord struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Events []struct {
				Fixed string `json:"fixed"`
			} `json:"events"`
		} `json:"ranges"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Fixed    string    `json:"fixed,omitempty"`
}

type moduleEntry struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vulnEntry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

func index(osvDir, out string) error {
	files, err := filepath.Glob(filepath.Join(osvDir, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no OSV records in %s", osvDir)
	}
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return err
	}
	modules := map[string][]moduleVuln{}
	var vulns []vulnEntry
	var newest time.Time
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var r osvRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(f), err)
		}
		if r.ID == "" {
			return fmt.Errorf("%s: record without an id", filepath.Base(f))
		}
		if r.Modified.After(newest) {
			newest = r.Modified
		}
		vulns = append(vulns, vulnEntry{ID: r.ID, Modified: r.Modified, Aliases: r.Aliases})
		for _, a := range r.Affected {
			mv := moduleVuln{ID: r.ID, Modified: r.Modified}
			for _, rg := range a.Ranges {
				for _, ev := range rg.Events {
					if ev.Fixed != "" {
						mv.Fixed = ev.Fixed
					}
				}
			}
			modules[a.Package.Name] = append(modules[a.Package.Name], mv)
		}
		if err := os.WriteFile(filepath.Join(out, "ID", r.ID+".json"), raw, 0o644); err != nil {
			return err
		}
	}
	var entries []moduleEntry
	for path, vs := range modules {
		entries = append(entries, moduleEntry{Path: path, Vulns: vs})
	}
	slices.SortFunc(entries, func(a, b moduleEntry) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(vulns, func(a, b vulnEntry) int { return strings.Compare(a.ID, b.ID) })
	for name, v := range map[string]any{
		"db.json":      map[string]time.Time{"modified": newest},
		"modules.json": entries,
		"vulns.json":   vulns,
	} {
		raw, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, "index", name), raw, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("vulncheck: indexed %d advisories for %d modules\n", len(vulns), len(entries))
	return nil
}

// finding is one govulncheck finding; a trace whose first frame names a
// function means permsync's code reaches the vulnerable symbol.
type finding struct {
	OSV          string `json:"osv"`
	FixedVersion string `json:"fixed_version"`
	Trace        []struct {
		Module   string `json:"module"`
		Version  string `json:"version"`
		Package  string `json:"package"`
		Function string `json:"function"`
		Receiver string `json:"receiver"`
	} `json:"trace"`
}

var advisoryID = regexp.MustCompile(`GO-\d{4}-\d{4,}`)

func report(in io.Reader, out io.Writer, acceptedFile string) error {
	accepted := map[string]bool{}
	if acceptedFile != "" {
		raw, err := os.ReadFile(acceptedFile)
		if err != nil {
			return err
		}
		for _, id := range advisoryID.FindAllString(string(raw), -1) {
			accepted[id] = true
		}
	}
	type hit struct {
		fixed, module, version, symbol string
	}
	reached := map[string]hit{}
	dec := json.NewDecoder(in)
	for {
		var msg struct {
			Finding *finding `json:"finding"`
		}
		err := dec.Decode(&msg)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading govulncheck's output: %w", err)
		}
		f := msg.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue
		}
		if _, seen := reached[f.OSV]; seen {
			continue
		}
		t := f.Trace[0]
		sym := t.Function
		if t.Receiver != "" {
			sym = t.Receiver + "." + sym
		}
		reached[f.OSV] = hit{fixed: f.FixedVersion, module: t.Module, version: t.Version, symbol: t.Package + "." + sym}
	}
	ids := make([]string, 0, len(reached))
	for id := range reached {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var failed []string
	for _, id := range ids {
		h := reached[id]
		switch {
		case h.fixed != "":
			fmt.Fprintf(out, "FIX AVAILABLE  %s in %s@%s (reached: %s): upgrade to %s\n", id, h.module, h.version, h.symbol, h.fixed)
			failed = append(failed, id)
		case accepted[id]:
			fmt.Fprintf(out, "accepted       %s in %s@%s (reached: %s): no fix released; mitigation in %s\n", id, h.module, h.version, h.symbol, acceptedFile)
		default:
			fmt.Fprintf(out, "NOT ACCEPTED   %s in %s@%s (reached: %s): no fix released and no mitigation written down in %s\n", id, h.module, h.version, h.symbol, acceptedFile)
			failed = append(failed, id)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d reachable advisories need action: %s", len(failed), strings.Join(failed, ", "))
	}
	fmt.Fprintf(out, "vulncheck: %d reachable advisories, none with a fix, each mitigated\n", len(ids))
	return nil
}

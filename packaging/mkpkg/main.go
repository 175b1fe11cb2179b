// Command mkpkg builds silentmon's Debian packages with nfpm from the
// programs make build left in bin/, the manual pages and shell completions
// each program writes of itself (its hidden __generate-docs argument), and
// the systemd units, configuration file and maintainer scripts under
// packaging/. make package runs it from the repository's top directory:
//
//	go run ./packaging/mkpkg [-bin bin] [-out out/packages] [-version V]
//
// It writes three packages and prints their paths:
//
//   - silentmon-common: smctl, the silentmon user and group, the shared
//     configuration /etc/silentmon/silentmon.yaml and the service
//     directories. Both other packages depend on it, so one host can run
//     both services (two packages cannot both ship /usr/bin/smctl).
//   - silentmon-server: smserver, smnic and smserver.service.
//   - silentmon-supervisor: smsupervisor and smsupervisor.service.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// options are mkpkg's flags.
type options struct {
	bin, src, docs, out, version, arch string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mkpkg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.bin, "bin", "bin", "directory of the programs make build wrote")
	fs.StringVar(&o.src, "src", "packaging", "directory of the units, configuration and maintainer scripts")
	fs.StringVar(&o.docs, "docs", "docs", "directory of the example configuration files")
	fs.StringVar(&o.out, "out", "out/packages", "directory the packages are written to")
	fs.StringVar(&o.version, "version", "", "package version (default: from git describe --tags --always --dirty)")
	fs.StringVar(&o.arch, "arch", runtime.GOARCH, "Debian architecture of the programs")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths, err := build(o)
	if err != nil {
		fmt.Fprintf(stderr, "mkpkg: %v\n", err)
		return 1
	}
	for _, p := range paths {
		fmt.Fprintln(stdout, p)
	}
	return 0
}

// pkg is one package to build.
type pkg struct {
	name, summary, description string
	programs                   []string // in /usr/bin, with their pages and completions
	depends                    []string
	unit                       string // the systemd unit, if any
	extra                      files.Contents
	scripts                    nfpm.Scripts
}

func build(o options) ([]string, error) {
	mtime, describe, err := gitState()
	if err != nil && o.version == "" {
		return nil, err
	}
	if o.version == "" {
		if o.version, err = DebVersion(describe, mtime); err != nil {
			return nil, err
		}
	}
	if mtime.IsZero() {
		mtime = time.Now().UTC().Truncate(time.Second)
	}
	for _, p := range []string{"smctl", "smserver", "smnic", "smsupervisor"} {
		if fi, err := os.Stat(filepath.Join(o.bin, p)); err != nil || fi.IsDir() {
			return nil, fmt.Errorf("%w: %s", ErrMissingProgram, filepath.Join(o.bin, p))
		}
	}
	stage, err := os.MkdirTemp("", "mkpkg-")
	if err != nil {
		return nil, fmt.Errorf("cannot create a staging directory: %w", err)
	}
	defer os.RemoveAll(stage)

	scripts := func(unit string) (nfpm.Scripts, error) {
		var s nfpm.Scripts
		for _, x := range []struct {
			name string
			dst  *string
		}{{"postinst", &s.PostInstall}, {"prerm", &s.PreRemove}, {"postrm", &s.PostRemove}} {
			b, err := os.ReadFile(filepath.Join(o.src, "scripts", "service."+x.name))
			if err != nil {
				return s, fmt.Errorf("cannot read the maintainer script: %w", err)
			}
			p := filepath.Join(stage, unit+"."+x.name)
			if err := os.WriteFile(p, bytes.ReplaceAll(b, []byte("@UNIT@"), []byte(unit)), 0o755); err != nil {
				return s, fmt.Errorf("cannot stage the maintainer script: %w", err)
			}
			*x.dst = p
		}
		return s, nil
	}
	serverScripts, err := scripts("smserver.service")
	if err != nil {
		return nil, err
	}
	supervisorScripts, err := scripts("smsupervisor.service")
	if err != nil {
		return nil, err
	}
	dir := func(path string, mode os.FileMode) *files.Content {
		return &files.Content{Destination: path, Type: files.TypeDir,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode}}
	}
	doc := func(src, dst string) *files.Content {
		return &files.Content{Source: src, Destination: dst,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644}}
	}
	pkgs := []pkg{
		{
			name:    "silentmon-common",
			summary: "silentmon live silent monitoring of VoIP calls: smctl and shared files",
			description: "smctl (start and stop monitor sessions, status, audit trail, capture\n" +
				"analysis, certificates), the silentmon system user, the configuration\n" +
				"file /etc/silentmon/silentmon.yaml read by both services and their\n" +
				"directories (/var/lib/silentmon, /var/log/silentmon).",
			programs: []string{"smctl"},
			depends:  []string{"adduser", "passwd"},
			extra: files.Contents{
				{Source: filepath.Join(o.src, "etc", "silentmon.yaml"), Destination: "/etc/silentmon/silentmon.yaml",
					Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o640}},
				// Owners and modes of these four are set by the postinst
				// (dpkg-statoverride) once the silentmon user exists.
				dir("/etc/silentmon/security", 0o750),
				dir("/var/lib/silentmon", 0o750),
				dir("/var/lib/silentmon/recordings", 0o750),
				dir("/var/log/silentmon", 0o750),
				doc(filepath.Join(o.src, "README.Debian"), "/usr/share/doc/silentmon-common/README.Debian"),
				doc(filepath.Join(o.docs, "smserver.example.yaml"), "/usr/share/doc/silentmon-common/examples/smserver.example.yaml"),
				doc(filepath.Join(o.docs, "smsupervisor.example.yaml"), "/usr/share/doc/silentmon-common/examples/smsupervisor.example.yaml"),
			},
			scripts: nfpm.Scripts{
				PostInstall: filepath.Join(o.src, "scripts", "common.postinst"),
				PostRemove:  filepath.Join(o.src, "scripts", "common.postrm"),
			},
		},
		{
			name:    "silentmon-server",
			summary: "silentmon capture server (smserver) and NIC qualification test (smnic)",
			description: "smserver captures the SPAN port (AF_PACKET), follows SIP and streams\n" +
				"the monitored agents' RTP to supervisor services over mutual TLS;\n" +
				"smserver.service runs it as the silentmon user with CAP_NET_RAW and\n" +
				"CAP_NET_ADMIN only. smnic qualifies a capture NIC.",
			programs: []string{"smserver", "smnic"},
			depends:  []string{"silentmon-common (= " + o.version + ")"},
			unit:     "smserver.service",
			scripts:  serverScripts,
		},
		{
			name:    "silentmon-supervisor",
			summary: "silentmon supervisor service (smsupervisor)",
			description: "smsupervisor receives monitored calls from capture servers and plays\n" +
				"them on a sound card (PortAudio) or records them as WAV files, with a\n" +
				"web console; smsupervisor.service runs it as the silentmon user.",
			programs: []string{"smsupervisor"},
			depends:  []string{"silentmon-common (= " + o.version + ")"},
			unit:     "smsupervisor.service",
			scripts:  supervisorScripts,
		},
	}

	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the output directory %s: %w", o.out, err)
	}
	var written []string
	for _, p := range pkgs {
		info, err := p.info(o, stage, mtime)
		if err != nil {
			return nil, err
		}
		path := filepath.Join(o.out, deb.Default.ConventionalFileName(info))
		if err := writePackage(info, path); err != nil {
			return nil, err
		}
		written = append(written, path)
	}
	return written, nil
}

// info is the nfpm description of p: its programs, their manual pages
// (gzipped) and completions, its unit and its other files.
func (p pkg) info(o options, stage string, mtime time.Time) (*nfpm.Info, error) {
	contents := append(files.Contents{}, p.extra...)
	depends := append([]string{}, p.depends...)
	for _, prog := range p.programs {
		bin := filepath.Join(o.bin, prog)
		deps, err := RuntimeDepends(bin)
		if err != nil {
			return nil, err
		}
		depends = append(depends, deps...)
		contents = append(contents, &files.Content{Source: bin, Destination: "/usr/bin/" + prog,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755}})
		generated, err := generateDocs(bin, filepath.Join(stage, prog), mtime)
		if err != nil {
			return nil, err
		}
		contents = append(contents, generated...)
	}
	if p.unit != "" {
		contents = append(contents, &files.Content{Source: filepath.Join(o.src, "systemd", p.unit),
			Destination: "/lib/systemd/system/" + p.unit,
			FileInfo:    &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644}})
	}
	info := &nfpm.Info{
		Name:          p.name,
		Arch:          o.arch,
		Platform:      "linux",
		Version:       o.version,
		VersionSchema: "none",
		Section:       "net",
		Priority:      "optional",
		Maintainer:    "silentmon maintainers <maintainers@silentmon.invalid>",
		Description:   p.summary + "\n" + p.description,
		Homepage:      "https://github.com/silentmon/silentmon",
		MTime:         mtime,
		Overridables: nfpm.Overridables{
			Depends:  dedupe(depends),
			Contents: contents,
			Scripts:  p.scripts,
			Umask:    0o022,
		},
	}
	return nfpm.WithDefaults(info), nil
}

// generateDocs runs bin with the hidden __generate-docs argument into dir
// and returns its manual pages (gzipped, as Debian ships them) and
// completions as package contents.
func generateDocs(bin, dir string, mtime time.Time) (files.Contents, error) {
	cmd := exec.Command(bin, "__generate-docs", dir)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(mtime.Unix(), 10))
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s __generate-docs %s failed: %w: %s", bin, dir, err, strings.TrimSpace(string(out)))
	}
	var c files.Contents
	pages, _ := filepath.Glob(filepath.Join(dir, "man", "man1", "*.1"))
	if len(pages) == 0 {
		return nil, fmt.Errorf("%s __generate-docs wrote no manual page into %s", bin, dir)
	}
	sort.Strings(pages)
	for _, page := range pages {
		gz := page + ".gz"
		if err := gzipFile(page, gz); err != nil {
			return nil, err
		}
		c = append(c, &files.Content{Source: gz, Destination: "/usr/share/man/man1/" + filepath.Base(gz),
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644}})
	}
	name := filepath.Base(bin)
	for _, x := range []struct{ src, dst string }{
		{"completion/bash/" + name, "/usr/share/bash-completion/completions/" + name},
		{"completion/zsh/_" + name, "/usr/share/zsh/vendor-completions/_" + name},
		{"completion/fish/" + name + ".fish", "/usr/share/fish/vendor_completions.d/" + name + ".fish"},
	} {
		c = append(c, &files.Content{Source: filepath.Join(dir, x.src), Destination: x.dst,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o644}})
	}
	return c, nil
}

// gzipFile writes src compressed into dst, without a name or time in the
// header so that rebuilds are identical.
func gzipFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("cannot read the manual page: %w", err)
	}
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := w.Write(b); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("cannot write the compressed manual page: %w", err)
	}
	return nil
}

func writePackage(info *nfpm.Info, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("cannot create the package %s: %w", path, err)
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("cannot build the package %s: %w", path, err)
	}
	return f.Close()
}

// gitState returns the time of HEAD's commit and git describe's output.
func gitState() (time.Time, string, error) {
	out, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
	if err != nil {
		return time.Time{}, "", fmt.Errorf("cannot read the commit's time with git log (give -version outside a git checkout): %w", err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("git log gave the commit time %q: %w", out, err)
	}
	d, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		return time.Time{}, "", fmt.Errorf("cannot describe the commit with git describe: %w", err)
	}
	return time.Unix(sec, 0).UTC(), strings.TrimSpace(string(d)), nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

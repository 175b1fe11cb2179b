package console

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/testutil"
)

// TestPageOffersOpus: the page leaves the browser's codecs as they are
// (a browser offers Opus first by default): app.js narrows no codec list.
func TestPageOffersOpus(t *testing.T) {
	b, err := webFS.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, narrow := range []string{"setCodecPreferences", "getCapabilities", "PCMU/8000"} {
		if strings.Contains(string(b), narrow) {
			t.Errorf("app.js uses %s: the page must not keep the browser from offering Opus", narrow)
		}
	}
}

// TestPageShowsAudioFormat runs app.js's audioFormat (with node) on the
// answers the supervisor gives: Opus at a session's rate reads "Opus 16
// kHz" (from sprop-maxcapturerate) or "Opus 48 kHz", PCMU "PCMU 8 kHz";
// the label follows the answer's first payload type of its first audio
// section.
func TestPageShowsAudioFormat(t *testing.T) {
	node := testutil.NeedTool(t, "node")
	b, err := webFS.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	i, j := strings.Index(src, "function audioFormat("), strings.Index(src, "async function play(")
	k := strings.Index(src, "function fmt(")
	if i < 0 || j < i || k < 0 {
		t.Fatal("app.js has no audioFormat function before play, or no fmt")
	}
	fmtEnd := k + strings.Index(src[k:], "\n  }\n") + 4
	answers := []struct{ sdp, want string }{
		{"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\n" +
			"a=fmtp:111 minptime=10;useinbandfec=1;sprop-stereo=0;sprop-maxcapturerate=16000\r\na=rtpmap:0 PCMU/8000\r\n", "Opus 16 kHz"},
		{"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=rtpmap:109 opus/48000/2\r\n" +
			"a=fmtp:109 minptime=10;useinbandfec=1;sprop-stereo=0;sprop-maxcapturerate=48000\r\n", "Opus 48 kHz"},
		{"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=rtpmap:0 PCMU/8000\r\n", "PCMU 8 kHz"},
		{"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0 111\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n", "PCMU 8 kHz"},
		{"v=0\r\n", ""},
	}
	script := src[k:fmtEnd] + "\n" + src[i:j] + "\n"
	for _, a := range answers {
		script += "console.log(JSON.stringify(audioFormat(" + jsString(a.sdp) + ")));\n"
	}
	path := filepath.Join(t.TempDir(), "format.js")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, path).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(got) != len(answers) {
		t.Fatalf("node printed %q, want %d lines", out, len(answers))
	}
	for n, a := range answers {
		if got[n] != jsString(a.want) {
			t.Errorf("answer %d: audioFormat gives %s, want %q", n, got[n], a.want)
		}
	}
}

// jsString quotes s as a JavaScript (and JSON) string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\r", `\r`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

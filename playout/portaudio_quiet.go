//go:build cgo && !noportaudio

package playout

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The sound libraries print their complaints to stderr while PortAudio
// probes them: ALSA through its error handler, JACK through its error and
// info functions. Both are replaced, found at run time (dlsym) so that
// nothing more is linked, by functions that keep the last lines here.

#define SM_LINES 64
#define SM_LINE 240

static pthread_mutex_t sm_mu = PTHREAD_MUTEX_INITIALIZER;
static char sm_lines[SM_LINES][SM_LINE];
static int sm_n;       // lines kept, at most SM_LINES
static int sm_dropped; // lines beyond SM_LINES

static void sm_keep(const char *prefix, const char *msg) {
	pthread_mutex_lock(&sm_mu);
	if (sm_n < SM_LINES) {
		snprintf(sm_lines[sm_n], SM_LINE, "%s%s", prefix, msg);
		sm_n++;
	} else {
		sm_dropped++;
	}
	pthread_mutex_unlock(&sm_mu);
}

static void sm_alsa_error(const char *file, int line, const char *function, int err, const char *fmt, ...) {
	char msg[SM_LINE];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	char full[SM_LINE];
	snprintf(full, sizeof full, "%s: %s", function ? function : "?", msg);
	sm_keep("ALSA: ", full);
}

static void sm_jack_error(const char *msg) { sm_keep("JACK: ", msg); }
static void sm_jack_info(const char *msg) { (void)msg; }

typedef void (*sm_alsa_handler)(const char *, int, const char *, int, const char *, ...);
typedef int (*sm_alsa_set)(sm_alsa_handler);
typedef void (*sm_jack_set)(void (*)(const char *));

// sm_quiet replaces the libraries' printers; it returns a bit per library
// found: 1 ALSA, 2 JACK.
static int sm_quiet(void) {
	int found = 0;
	sm_alsa_set alsa = (sm_alsa_set)dlsym(RTLD_DEFAULT, "snd_lib_error_set_handler");
	if (alsa != NULL && alsa(sm_alsa_error) == 0) {
		found |= 1;
	}
	sm_jack_set jerr = (sm_jack_set)dlsym(RTLD_DEFAULT, "jack_set_error_function");
	sm_jack_set jinfo = (sm_jack_set)dlsym(RTLD_DEFAULT, "jack_set_info_function");
	if (jerr != NULL) {
		jerr(sm_jack_error);
		found |= 2;
	}
	if (jinfo != NULL) {
		jinfo(sm_jack_info);
	}
	return found;
}

typedef int (*sm_card_next)(int *);
typedef int (*sm_pcm_open)(void **, const char *, int, int);
typedef int (*sm_pcm_close)(void *);
typedef const char *(*sm_strerror)(int);

// sm_alsa_default reports whether ALSA can play at all before PortAudio
// looks: 1 when a sound card exists or the default PCM opens for playback
// (non-blocking, closed at once), 0 when neither, with ALSA's reason for
// the default PCM in why (size n); -1 when ALSA is not loaded.
static int sm_alsa_default(char *why, int n) {
	sm_card_next next = (sm_card_next)dlsym(RTLD_DEFAULT, "snd_card_next");
	sm_pcm_open open = (sm_pcm_open)dlsym(RTLD_DEFAULT, "snd_pcm_open");
	sm_pcm_close close = (sm_pcm_close)dlsym(RTLD_DEFAULT, "snd_pcm_close");
	sm_strerror str = (sm_strerror)dlsym(RTLD_DEFAULT, "snd_strerror");
	if (next == NULL || open == NULL || close == NULL || str == NULL) {
		return -1;
	}
	int card = -1;
	if (next(&card) == 0 && card >= 0) {
		return 1;
	}
	void *pcm = NULL;
	int err = open(&pcm, "default", 0, 1); // SND_PCM_STREAM_PLAYBACK, SND_PCM_NONBLOCK
	if (err == 0) {
		close(pcm);
		return 1;
	}
	snprintf(why, n, "%s", str(err));
	return 0;
}

// sm_count returns the number of lines kept, sm_take copies line i into
// buf (size n), and sm_reset forgets them, returning how many more there
// were.
static int sm_count(void) {
	pthread_mutex_lock(&sm_mu);
	int n = sm_n;
	pthread_mutex_unlock(&sm_mu);
	return n;
}

static void sm_take(int i, char *buf, int n) {
	pthread_mutex_lock(&sm_mu);
	if (i < sm_n) {
		snprintf(buf, n, "%s", sm_lines[i]);
	} else {
		buf[0] = 0;
	}
	pthread_mutex_unlock(&sm_mu);
}

static int sm_reset(void) {
	pthread_mutex_lock(&sm_mu);
	int dropped = sm_dropped;
	sm_n = 0;
	sm_dropped = 0;
	pthread_mutex_unlock(&sm_mu);
	return dropped;
}
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// quietOnce replaces the sound libraries' printers once per process:
// they stay replaced, so a device that fails later (unplugged) does not
// print either.
var quietOnce sync.Once

// quietSoundLibraries keeps ALSA's and JACK's complaints off stderr from
// now on (see SoundLibraryMessages) and tells JACK not to start a server
// of its own (JACK_NO_START_SERVER, unless set already): a supervisor
// plays on the sound card, not through a JACK server it would spawn.
func quietSoundLibraries() {
	quietOnce.Do(func() {
		if _, ok := os.LookupEnv("JACK_NO_START_SERVER"); !ok {
			os.Setenv("JACK_NO_START_SERVER", "1")
		}
		C.sm_quiet()
	})
}

// alsaCanPlay reports whether ALSA has a sound card or a default PCM that
// opens for playback, and if not, ALSA's reason. PortAudio is not asked
// when it cannot: with an ALSA configuration that defines no device,
// PortAudio's device enumeration aborts the process (an assertion in
// BuildDeviceList) instead of returning an error.
func alsaCanPlay() (bool, string) {
	quietSoundLibraries()
	buf := (*C.char)(C.malloc(C.SM_LINE))
	defer C.free(unsafe.Pointer(buf))
	switch C.sm_alsa_default(buf, C.SM_LINE) {
	case 0:
		return false, C.GoString(buf)
	}
	return true, ""
}

// soundLibraryLines returns the lines the libraries reported since the
// last call, and forgets them.
func soundLibraryLines() []string {
	n := int(C.sm_count())
	out := make([]string, 0, n+1)
	buf := (*C.char)(C.malloc(C.SM_LINE))
	defer C.free(unsafe.Pointer(buf))
	for i := 0; i < n; i++ {
		C.sm_take(C.int(i), buf, C.SM_LINE)
		out = append(out, C.GoString(buf))
	}
	if dropped := int(C.sm_reset()); dropped > 0 {
		out = append(out, fmt.Sprintf("(%d more lines)", dropped))
	}
	return out
}

package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	smtls "github.com/silentmon/silentmon/tls"
)

// TokenBytes is the size of a token: 128 random bits, 32 hex digits.
const TokenBytes = 16

// CookieName is the cookie that carries the token.
const CookieName = "silentmon_console"

// NewToken returns a new random token: 128 bits in hex.
func NewToken() (string, error) {
	var b [TokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("console token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// ValidToken reports whether t has the form of a token.
func ValidToken(t string) bool {
	if len(t) != 2*TokenBytes {
		return false
	}
	_, err := hex.DecodeString(t)
	return err == nil
}

// WriteTokenFile writes token and a newline to path, mode 0600, replacing
// what the file held. A symbolic link at path is refused (O_NOFOLLOW), and
// an existing file's mode is set to 0600.
func WriteTokenFile(path, token string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("console token file %s: %w", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("console token file %s: %w", path, err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("console token file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("console token file %s: %w", path, err)
	}
	return nil
}

// how a request authenticated.
type authKind int

const (
	authNone   authKind = iota
	authCookie          // the cookie: a browser sends it by itself
	authCert            // a client certificate: the same
	authBearer          // the header: only a program that knows the token
)

func (s *Server) tokenIs(t string) bool {
	return subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.Token)) == 1
}

// authenticate says how r authenticated, if it did.
func (s *Server) authenticate(r *http.Request) authKind {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok && s.tokenIs(strings.TrimSpace(t)) {
			return authBearer
		}
	}
	if c, err := r.Cookie(CookieName); err == nil && s.tokenIs(c.Value) {
		return authCookie
	}
	if r.TLS != nil && (smtls.PeerHasRole(r.TLS, smtls.RoleClient) || smtls.PeerHasRole(r.TLS, smtls.RoleAdmin)) {
		return authCert
	}
	return authNone
}

// sameOrigin reports whether r comes from a page of this console: its
// Origin header names this host (or, without Origin, the browser says
// the request is same-origin).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return r.Header.Get("Sec-Fetch-Site") == "same-origin"
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	want := "http"
	if r.TLS != nil {
		want = "https"
	}
	return u.Scheme == want && u.Host != "" && strings.EqualFold(u.Host, r.Host) && u.Path == ""
}

// setHeaders sets the security headers every answer carries.
func setHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; media-src 'self' blob: mediastream:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
}

const unauthorisedPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>silentmon console: not authorised</title></head>
<body><main><h1>Not authorised</h1>
<p>Not authorised: open the console with the URL smsupervisor printed at start (it holds the token).</p>
</main></body></html>
`

// unauthorised answers 401: JSON under /api/, the short page elsewhere.
func unauthorised(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeError(w, http.StatusUnauthorized, "not authorised: open the console with the URL smsupervisor printed at start (it holds the token)")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	w.Write([]byte(unauthorisedPage))
}

// guard wraps next with the headers, the token exchange and the checks of
// authentication and, for POST, of origin.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w)
		if r.URL.Path == "/" && r.URL.Query().Has("token") {
			if r.Method != http.MethodGet || !s.tokenIs(r.URL.Query().Get("token")) {
				unauthorised(w, r)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.cfg.Token, Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		how := s.authenticate(r)
		if how == authNone {
			unauthorised(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && how != authBearer && !sameOrigin(r) {
			writeError(w, http.StatusForbidden, "request refused: it does not come from this console's page (no matching Origin header) and carries no Bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

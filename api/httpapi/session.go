package httpapi

// The dashboard's session cookie. The admin edge sets and reads it; the
// request edge takes it out of every proxied request, because browsers
// scope cookies to the host and not the port: the app behind the proxy on
// the same host would receive it too, and could replay it.
const (
	// SecureSessionCookie is its name over HTTPS. A browser accepts a
	// __Host- cookie only if it is Secure, has Path=/ and no Domain, so no
	// other host (a sibling subdomain) can set or shadow it.
	SecureSessionCookie = "__Host-apiwarden_session"
	// SessionCookie is its name over plain HTTP, where the cookie cannot
	// be Secure and a browser would refuse a __Host- name.
	SessionCookie = "apiwarden_session"
)

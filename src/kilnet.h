/*
 * kilnet.h: the pure layer's types and entry points: the config and its
 * dataset, the renderers, the site, the protocols' parsers and answers, the
 * frames the processes exchange (as bytes). Nothing here knows of sockets,
 * processes or OpenSSL: the server's runtime (listeners, workers, TLS, the
 * master and its helpers, the log) is in server.h, which includes this.
 *
 * Data flows one way:
 *   config.c, config_network.c, loader.c (libconfig file)
 *       -> struct config { server settings, struct network }
 *   render_gemtext.c / render_gopher.c (dataset -> bytes), render_spartan.c /
 *       render_nex.c (generated gemtext -> Spartan's and Nex's pages)
 *   site.c (rendered pages + capsule/ files -> immutable struct site)
 *   gemini.c / gopher.c / spartan.c / nex.c (request bytes + site -> struct
 *       reply), pure functions
 *   master.c (processes), listeners.c (sockets), sandbox.c (privileges),
 *   worker.c + conn.c (a worker's loop and connections), tlsctx.c -> the network
 * A module's internals stay static in its own file.
 */
#ifndef KILNET_H
#define KILNET_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

#define KILNET_NAME    "kilnet"
/* KILNET_VERSION comes from the Makefile's VERSION (-DKILNET_VERSION), the one
 * place it is written. */
#ifndef KILNET_VERSION
#error "KILNET_VERSION is not defined: build with the Makefile, which sets it from VERSION"
#endif

/* Gemini spec: a request is an absolute URL of at most 1024 bytes, then CRLF. */
#define GEMINI_MAX_URL     1024
#define GEMINI_MAX_REQUEST (GEMINI_MAX_URL + 2)
/* Gemini spec: META is at most 1024 bytes. */
#define GEMINI_MAX_META    1024
/* Gopher: a selector is at most 1024 bytes here (RFC 1436 sets no limit; clients
 * and servers in use keep far below it); a search query may follow after a TAB. */
#define GOPHER_MAX_SELECTOR 1024
#define GOPHER_MAX_REQUEST  2048
/* RFC 1436 menus and our text documents are wrapped at this many code points. */
#define GOPHER_WRAP_COLUMNS 70
/* Spartan (spartan.mozz.us): "HOST SP PATH SP CONTENT-LENGTH CRLF", then that
 * many bytes of data. The line is held to Gemini's URL limit; the data block
 * carries only a search query here, so it is held to a small one. */
#define SPARTAN_MAX_LINE    1024
#define SPARTAN_MAX_DATA    256
#define SPARTAN_MAX_REQUEST (SPARTAN_MAX_LINE + 2 + SPARTAN_MAX_DATA)
/* Nex (nightfall.city/nex): a path and a newline; the same limit as Gopher's. */
#define NEX_MAX_REQUEST     (GOPHER_MAX_SELECTOR + 2)
/* Nex directories and text documents are wrapped like Gopher's. */
#define NEX_WRAP_COLUMNS    GOPHER_WRAP_COLUMNS

/* The protocols a listener serves (struct lsock, wsock, listener: kind). */
enum proto_kind { KIND_GEMINI = 0, KIND_GOPHER = 1, KIND_SPARTAN = 2, KIND_NEX = 3 };

/* ------------------------------------------------------------------ diag.c */
/*
 * Error messages collected for a caller that reports them all at once
 * ("FILE:LINE: SETTING: what is wrong", like a compiler).
 */
struct diag {
	char   **msgs;
	size_t   n, cap;
};

/* Adds "file:line: setting: message"; file may be NULL (then no "file:line: "),
 * line 0 drops ":line", setting NULL drops "setting: ". */
void diag_add(struct diag *, const char *file, int line, const char *setting,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void diag_print(const struct diag *, const char *prefix);  /* to stderr */
void diag_clear(struct diag *);

/* ------------------------------------------------------------------ util.c */
void   *xmalloc(size_t);
void   *xcalloc(size_t, size_t);
void   *xrealloc(void *, size_t);
char   *xstrdup(const char *);
char   *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char   *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* CLOCK_MONOTONIC in ms, for deadlines; and ms as a (non-negative) timeval. */
long    now_ms(void);
struct timeval ms_tv(long ms);

/* A growable byte buffer; used while rendering, never on the request path. */
struct buf {
	unsigned char *data;
	size_t         len, cap;
};
void    buf_add(struct buf *, const void *, size_t);
void    buf_adds(struct buf *, const char *);
void    buf_printf(struct buf *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
void    buf_free(struct buf *);

/* ---------------------------------------------------------------- dataset */
/* An optional ISO 8601 calendar date, "YYYY-MM-DD" (checked to be a real day),
 * or "" when the dataset gives none. Held inline: nothing to free. */
#define DATE_LEN 10

struct paragraphs {
	char   **v;
	size_t   n;
};

struct member {
	char              *id;            /* slug: [a-z0-9-], used in paths */
	char              *name;          /* "Bradford Metropolitan District Council" */
	char              *spokesperson;  /* "Cllr Susan Hinchcliffe" */
	char              *role;          /* "Leader of Bradford Council" */
	struct paragraphs  statement;     /* the quote, paragraph by paragraph */
	int                line;          /* where it was defined, for messages */
	/* Optional dates: "" when not given. */
	char               joined[DATE_LEN + 1];   /* when it joined the network */
	char               updated[DATE_LEN + 1];  /* when its statement changed */
};

struct network {
	char              *name;          /* "Keep it Local Network" */
	struct paragraphs  introduction;  /* prose before the quote */
	char              *quote;         /* the short quote on the home page */
	char              *quote_by;      /* its attribution */
	struct paragraphs  background;    /* prose after the quote */
	char              *convener;      /* "Locality" */
	char              *partner;       /* "Lloyds Bank Foundation" */
	char              *url;           /* the network's web page (may be NULL) */
	struct paragraphs  members_intro; /* text above the member list */
	struct member     *members;
	size_t             n_members;
	char              *join_heading;
	struct paragraphs  join_text;
	char              *join_label;
	char              *join_url;
	char               updated[DATE_LEN + 1];  /* optional: page last changed */
};

/* ----------------------------------------------------------------- config */
/* An address range, e.g. 127.0.0.0/8 or ::1/128. */
struct cidr {
	int            family;   /* AF_INET or AF_INET6 */
	unsigned char  addr[16]; /* network byte order */
	int            bits;
};

struct listen_addr {
	char  *host;     /* numeric address: "127.0.0.1", "::1", "0.0.0.0", "::" */
	int    port;
	int    proxy;    /* expects a PROXY protocol header */
};

struct host_conf {
	char  *name;     /* hostname served; hosts[0] is the public one */
	char  *cert;     /* certificate file (PEM), resolved path */
	char  *key;      /* private key file (PEM), resolved path */
	int    editing;  /* its handshake asks for a client certificate (editors) */
};

struct config {
	char               *file;        /* the main config file as given */
	char               *dir;         /* its folder: relative paths start here */

	struct host_conf   *hosts;       /* at least one */
	size_t              n_hosts;
	struct listen_addr *gemini_listen;
	size_t              n_gemini_listen;
	struct listen_addr *gopher_listen;
	size_t              n_gopher_listen;
	struct listen_addr *spartan_listen;  /* none: Spartan is off */
	size_t              n_spartan_listen;
	struct listen_addr *nex_listen;      /* none: Nex is off */
	size_t              n_nex_listen;
	int                 gemini_port; /* public port in links; 0: first listen's */
	int                 gopher_port; /* public port in links; 0: first listen's */
	int                 spartan_port;/* the same; stays 0 when Spartan is off */
	int                 nex_port;    /* the same; stays 0 when Nex is off */

	char               *cert_dir;    /* resolved path */
	char               *capsule_dir; /* resolved path */

	int                 handshake_timeout_ms;
	int                 request_timeout_ms;
	int                 write_timeout_ms;
	int                 max_connections;   /* per worker */
	int                 workers;           /* 0: number of cores */

	char               *access_log;  /* path, or NULL for stderr; "off" disables */
	int                 log_anonymise;
	int                 log_json;    /* server.log_format = "json" */

	/* The metrics process's HTTP listeners (config_metrics.c); none: off. */
	struct listen_addr *metrics_listen;
	size_t              n_metrics_listen;

	char               *gopher_description;  /* caps.txt ServerDescription */
	int                 gopher_description_net;  /* 1: the network's name */
	char               *gopher_geolocation;  /* caps.txt ServerGeolocationString */

	/* Rate limits: a token bucket per client address (IPv6 by /64). */
	double              rate;              /* requests per second refilled; 0: off */
	double              burst;             /* bucket size */
	int                 max_per_address;   /* open connections per address; 0: off */
	struct cidr        *allow;             /* exempt ranges (default: loopback) */
	size_t              n_allow;

	/* Privileges: started as root, workers switch to this user (default
	 * "nobody") and chroot to chroot_dir. */
	char               *user;
	char               *chroot_dir;  /* NULL: the default empty folder; "": none */
	/* Workers serve inside a seccomp filter (default on). */
	int                 sandbox;

	/* Editing from a Gemini client (Titan; config_edit.c). */
	char              **editors;       /* SHA-256 of each editor's certificate */
	size_t              n_editors;     /* 0: editing is off */
	char               *editing_host;  /* NULL: edit on the public hostname */
	int                 max_upload;    /* bytes */
	int                 upload_timeout_ms;
	char               *state_dir;     /* resolved: the edited dataset, versions */
	char               *dataset_file;  /* the file the network group came from */
	/* The edited state shared in etcd (config_store.c, store_etcd.c);
	 * n_store_etcd 0: the state folder alone. */
	char              **store_etcd;    /* endpoints */
	size_t              n_store_etcd;
	char               *store_prefix;  /* "/kilnet/" */
	char               *store_ca, *store_cert, *store_key;   /* resolved */

	struct network      net;
};

void  config_free_store(struct config *);
/* Loads FILE (libconfig, with @include) into *cfg; every problem goes to d as
 * "FILE:LINE: SETTING: what is wrong". Returns 0, or -1 when d holds errors. */
int   config_load(const char *file, struct config *cfg, struct diag *d);
/* The same, with the dataset (the network group) read from the file DATASET
 * instead; NULL: from STATE_DIR/network.conf when an editor stored one, else
 * from the config file. */
int   config_load_with(const char *file, const char *dataset,
	    struct config *cfg, struct diag *d);
/* config_load_with's DATASET for the config's own network group (the seed),
 * whether or not an editor stored one: the root master parses nothing that
 * an editor wrote (build.c reads that one, unprivileged). */
#define CONFIG_SEED ""
/* cfg's dataset replaced by the one in text, a libconfig text holding only the
 * network group (STATE/network.conf, an upload); problems name display as it
 * is, or only their line when display is "". 0, or -1 (cfg->net then empty). */
int   config_read_dataset(struct config *cfg, const void *text, size_t len,
	    const char *display, struct diag *d);
/* The edited dataset's name in server.state_dir. */
#define STATE_DATASET "network.conf"
/* With server.store: the dataset's etcd revision, beside it (store_etcd.c). */
#define STATE_REVISION "store.rev"
/* The editors' capsule files in server.state_dir: an overlay over capsule/. */
#define STATE_CAPSULE "capsule"
/* Fills in what depends on the command line: the public ports from the first
 * listen address when not set, the certificate paths of each host. */
void  config_finish(struct config *cfg);
void  config_free(struct config *cfg);
/* config_edit.c: 1 when fp (64 lower-case hex digits) is an editor's. */
int   config_is_editor(const struct config *, const char *fp);
void  config_free_editing(struct config *);
void  config_free_metrics(struct config *);
/* Parses "ADDR:PORT" or "[V6]:PORT" into *la. Returns 0 or -1. */
int   config_parse_listen(const char *s, struct listen_addr *la);

/* Checks the dataset's content rules (ids, empty text, control characters);
 * used by config.c, which knows the lines. 0 or -1 with messages in d. */
int   dataset_check_text(const char *s, const char **why);
int   dataset_check_id(const char *s, const char **why);
void  network_free(struct network *);

/* ---------------------------------------------------------------- render */
struct search_hit {
	const char *id;            /* member id */
	const char *name;          /* council's name */
	const char *sentence;      /* the first matching sentence (or field), */
	size_t      sentence_len;  /* not NUL-terminated */
};

/*
 * Pages that grow with the network stay small at any size of it: the home
 * pages list the first members only, and the member list and search results
 * are cut into pages. Limits are in bytes, the Gemini response header
 * included (RENDER_HEADER_ROOM is kept for it: "20 text/gemini;
 * charset=utf-8; lang=en\r\n" is 39 bytes).
 */
#define RENDER_HOME_MAX    2048    /* both home pages */
#define RENDER_PAGE_MAX    8192    /* a page of the member list or of results */
#define RENDER_FEED_MAX    32768   /* the Atom feed: its newest entries */
#define RENDER_HEADER_ROOM 64
/* render_page.c: cuts n items (item i is off[i] to off[i + 1] bytes of the
 * list) into pages within RENDER_PAGE_MAX, less a frame (head and foot) of
 * frame1 bytes on the first page and frame on the others; first[p] is page
 * p + 1's first item, first[pages] = n. Returns the number of pages. */
size_t render_cut_pages(const size_t *off, size_t n, size_t frame1, size_t frame,
	    size_t *first);
/* Hits on one page of results at most, whatever their size: the page is a
 * fixed array on a worker's stack. */
#define SEARCH_PAGE_HITS   100
/* Pages of results are numbered up to this (a guard on the number parsed). */
#define SEARCH_MAX_PAGE    1000000

/* Called by the renderers of a list cut into pages, once per page in order,
 * with the page's path (Gemini) or selector (Gopher) and its body. */
typedef void (*render_page_fn)(void *arg, const char *key, struct buf *body);

struct render_opts;
/*
 * One page of search results. The front end asks for a page through a
 * renderer (render_*_search_page sets page, budget and cost: the bytes a hit
 * takes in its layout); search_run fills in the rest.
 */
struct search_page {
	size_t             page;      /* asked: 1 for the first */
	size_t             budget;    /* bytes the hits of one page may take */
	size_t           (*cost)(const struct search_hit *,
			       const struct render_opts *);
	const struct render_opts *ro;
	size_t             total;     /* members that match */
	size_t             pages;     /* pages they fill (0 when none) */
	size_t             n;         /* hits on the page asked (0 past the last) */
	struct search_hit  hits[SEARCH_PAGE_HITS];
};

/* What renderers need besides the dataset: where the site lives. */
struct render_opts {
	const char *hostname;     /* public hostname */
	int         gemini_port;  /* public ports */
	int         gopher_port;
	int         spartan_port; /* 0: not served (no link to it) */
	int         nex_port;     /* 0: not served */
};

/* Gemtext pages. Each appends its body to *out. */
void  render_gemtext_home(const struct network *, const struct render_opts *, struct buf *out);
/* The member list: "/members/", then "/members/page/2.gmi"... when it does not
 * fit one page of RENDER_PAGE_MAX bytes. */
void  render_gemtext_members(const struct network *, const struct render_opts *,
	    render_page_fn page, void *arg);
void  render_gemtext_member(const struct network *, const struct member *, const struct render_opts *, struct buf *out);
void  render_gemtext_join(const struct network *, const struct render_opts *, struct buf *out);
/* Text of a dataset field made safe as a gemtext text line (never markup). */
void  render_gemtext_text_line(const char *s, struct buf *out);
/* "SCHEME://HOST[:PORT]/" of this site over gemini, gopher, spartan or nex
 * (the port left out when it is the protocol's own). */
void  render_site_url(struct buf *out, const char *scheme, const struct render_opts *);
/* n with thousands separators: "10,000". */
void  render_count(struct buf *out, size_t n);
/* A search query for a link: every byte but A-Z a-z 0-9 - . _ ~ as %XX, so
 * that decoding it once (Gemini query, Gopher selector) gives it back. */
void  render_query(struct buf *out, const char *query);

/* Gopher menus (ending ".\r\n") and text documents (dot-stuffed, wrapped at 70). */
void  render_gopher_root(const struct network *, const struct render_opts *, struct buf *out);
/* The member menu: "/members", then "/members/page/2"... as for Gemini. */
void  render_gopher_members(const struct network *, const struct render_opts *,
	    render_page_fn page, void *arg);
void  render_gopher_member(const struct network *, const struct member *, const struct render_opts *, struct buf *out);
void  render_gopher_join(const struct network *, const struct render_opts *, struct buf *out);
/* render_nex.c: a generated gemtext page as a Nex directory (plain text
 * wrapped at NEX_WRAP_COLUMNS, "=> " link lines with the site's own links
 * moved to their Nex paths, no search); and a Gemini path's Nex path. */
void  render_nex_from_gemtext(const unsigned char *gmi, size_t len,
	    const struct render_opts *, struct buf *out);
char *render_nex_path(const char *gemini_path);
/* render_spartan.c: a generated gemtext page for Spartan: the link to the
 * search becomes a "=:" prompt line, the link to the Spartan site itself one
 * to the Gemini site. Returns 0 when the page needs no change. */
int   render_spartan_from_gemtext(const unsigned char *gmi, size_t len,
	    const struct render_opts *, struct buf *out);
/* render_docs.c: every member's Gopher document (render_gopher_member),
 * begun on a second thread by _start; _finish helps, then returns them, one
 * buffer per member in member order (the caller frees each and the array). */
#define RENDER_DOCS_THREAD_MIN 64
struct doc_batch;
struct doc_batch *render_docs_start(const struct network *, const struct render_opts *);
struct buf *render_docs_finish(struct doc_batch *);
/* One menu line; display is cleaned of TAB/CR/LF. */
void  render_gopher_item(struct buf *out, char type, const char *display,
	    const char *selector, const char *host, int port);
/* Prose as "i" lines wrapped at GOPHER_WRAP_COLUMNS. */
void  render_gopher_info(struct buf *out, const char *text, const struct render_opts *);
/* A gemtext page converted into a Gopher menu (links become items). */
void  render_gopher_from_gemtext(const unsigned char *gmi, size_t len,
	    const struct render_opts *, struct buf *out);
/* The same for the capsule page at `path`: relative links resolve against it,
 * and a link to this site becomes an item only when lookup(arg, selector) gives
 * the served selector's item type (0: not served, the link text stays as text). */
void  render_gopher_from_gemtext_at(const unsigned char *gmi, size_t len,
	    const char *path, char (*lookup)(void *arg, const char *selector),
	    void *arg, const struct render_opts *, struct buf *out);
/* The Atom 1.0 feed (/atom.xml): one entry for the network page and one per
 * member, newest first, as many as fit RENDER_FEED_MAX bytes. Returns -1 (and
 * writes nothing) when the dataset carries no date. */
int   render_atom_feed(const struct network *, const struct render_opts *, struct buf *out);
/* The date a member shows on the member list and in the feed: updated, else
 * joined; "" when neither is given. */
const char *render_atom_date(const struct member *);
/* The latest date in the dataset; "" when there is none (and so no feed). */
const char *render_atom_latest(const struct network *);

/* Search results, rendered per request (the only page rendered then): page
 * sets up sp to ask for page `page` of query's results in this layout; then
 * search_run fills it and search renders it. Page 1 is "/search?QUERY", page
 * N "/search/page/N?QUERY" (Gopher: the same selectors, the query after a TAB
 * or, in the links between pages, after the "?"). */
void  render_gemtext_search_page(const struct render_opts *, const char *query,
	    size_t page, struct search_page *sp);
void  render_gemtext_search(const struct render_opts *, const char *query,
	    const struct search_page *, struct buf *out);
void  render_gopher_search_page(const struct render_opts *, const char *query,
	    size_t page, struct search_page *sp);
/* query "" renders the prompt (the /search menu at load). */
void  render_gopher_search(const struct render_opts *, const char *query,
	    const struct search_page *, struct buf *out);
/* render_page.c: what render_*_search_page share: sets page, the budget left
 * for hits once the page's frame (rendered by render, its numbers at their
 * widest) is counted, and cost. */
void  render_search_frame(const struct render_opts *, const char *query,
	    size_t page, void (*render)(const struct render_opts *, const char *,
	    const struct search_page *, struct buf *),
	    size_t (*cost)(const struct search_hit *, const struct render_opts *),
	    struct search_page *sp);
/* Wraps UTF-8 text at `columns` code points into lines (no line terminators
 * inside); calls emit for each line. Never splits a UTF-8 sequence. */
void  wrap_text(const char *text, int columns,
	    void (*emit)(void *arg, const char *line, size_t len), void *arg);

/* ----------------------------------------------------------------- search */
struct search_index;
/* Indexes the members; page gives member m's Gemini page, whose bytes the
 * index points into (the text shown with a hit): the pages must outlive it.
 * The network may go once it is built. */
struct search_index *search_build(const struct network *,
	    const char *(*page)(void *arg, const struct member *m, size_t *len),
	    void *arg);
/* Case-insensitive, UTF-8 aware match of query against each member's name,
 * spokesperson, role and statement, each member once, in the dataset's
 * order. Fills sp (set up by render_*_search_page) with the page it asks for
 * and the number of matches and pages; 0, or -1 when the query is not valid
 * UTF-8. */
int   search_run(const struct search_index *, const char *query, size_t qlen,
	    struct search_page *sp);
void  search_free(struct search_index *);
/* The members indexed: the dataset's, for kilnet_dataset_members. */
size_t search_members(const struct search_index *);
/* The index on the wire (site_wire.c): a field's text as an offset into one
 * of pages (the site's Gemini table, which the index points into), or its
 * bytes when it is in none. _read builds an index that points into pages (of
 * the site being read); NULL with w->err set when the bytes are not one. */
struct resource;
struct wire;
void  search_wire_write(const struct search_index *,
	    const struct resource *pages, size_t n_pages, struct buf *out);
struct search_index *search_wire_read(struct wire *,
	    const struct resource *pages, size_t n_pages);

/* ------------------------------------------------------------------- site */
/* One response that exists before any request: built at load, read-only. */
struct resource {
	char          *key;        /* Gemini path ("/members/") or Gopher selector */
	const char    *mime;       /* MIME type (Gemini); static string */
	char           gtype;      /* Gopher item type ('0', '1', '9', 'I', ...) */
	unsigned char *data;       /* Gemini: "20 MIME\r\n" + body; Gopher: body */
	size_t         len;
	size_t         body_off;   /* where the body starts in data */
	int            generated;  /* 1: rendered from the dataset; 0: capsule file */
	int            search;     /* 1: a search endpoint (takes a query) */
};

struct site {
	struct resource      *gemini;   /* sorted by key, for bsearch */
	size_t                n_gemini;
	struct resource      *gopher;   /* sorted by key */
	size_t                n_gopher;
	struct resource      *spartan;  /* sorted by key; empty when Spartan is off */
	size_t                n_spartan;
	struct resource      *nex;      /* sorted by key; empty when Nex is off */
	size_t                n_nex;
	struct search_index  *search;
	struct render_opts    ro;       /* points into the strings below */
	char                 *hostname;
	char                 *network_name;
	char                **hosts;    /* every hostname served (Gemini 53 check) */
	size_t                n_hosts;
	int                  *ports;    /* every Gemini port accepted in URLs */
	size_t                n_ports;
	char                 *caps;     /* caps.txt body */
	char                 *edit_host; /* where editors edit; NULL: editing off */
	char                 *mimes;    /* site_wire_read: the MIME types resources
					 * point into; NULL: static strings */
};

/* Renders the dataset and loads capsule/; warnings (a capsule file shadowed by
 * a generated page) and errors go to d. NULL on error. Once the site holds
 * everything it serves, the dataset (cfg->net) is freed and left empty:
 * nothing reads it after, and at 10,000 members it would be a quarter of
 * every worker's memory. */
struct site           *site_build(struct config *, struct diag *d);
/* Where site_build_from reads the capsule: folders opened by the caller (-1:
 * by their paths), so that a process that has since given up the right to
 * reach them by path reads through them; and one capsule file that is not
 * stored yet (an editor's upload being checked: extra_path "/a/b.gmi"),
 * which replaces the file of that path. */
struct site_src {
	int                  capsule_fd;   /* capsule/ */
	int                  overlay_fd;   /* STATE/capsule */
	const char          *extra_path;
	const unsigned char *extra;
	size_t               extra_len;
};
struct site           *site_build_from(struct config *, const struct site_src *,
			    struct diag *d);
void                   site_free(struct site *);
const struct resource *site_gemini(const struct site *, const char *path);
const struct resource *site_gopher(const struct site *, const char *selector);
const struct resource *site_spartan(const struct site *, const char *path);
const struct resource *site_nex(const struct site *, const char *path);
/* The page of search results a path (Gemini) or selector (Gopher) asks for:
 * 1 for "/search", N for "/search/page/N" (N from 2 to SEARCH_MAX_PAGE, no
 * leading zero), 0 for any other. */
size_t                 site_search_page(const char *path);
/* Writes DIR/gemini/... and DIR/gopher/... (and DIR/spartan/, the pages that
 * differ from Gemini's, and DIR/nex/ when they are served); 0 or -1 with a
 * message in d. */
int                    site_export(const struct site *, const char *dir, struct diag *d);
/* MIME type for a file name, by extension; "application/octet-stream" else. */
const char            *mime_for(const char *name);
/* Gopher item type for a MIME type ('0', '1', 'h', 'g', 'I', '9'). */
char                   gopher_type_for(const char *mime);

/* ------------------------------------------------------------ site_wire.c */
/*
 * The built site as bytes, so that a process that parses the dataset and the
 * capsule (unprivileged) can hand the site to one that parses nothing else
 * (the master): length-prefixed records, little-endian fixed-width integers,
 * every pointer an index or an offset. The format is at the top of site_wire.c.
 */
/* Appends the whole site (every field of struct site, the resources, the
 * search index) to out. */
void         site_wire_write(const struct site *, struct buf *out);
/* A site from bytes written by site_wire_write; NULL when the bytes are not a
 * whole, well-formed site (with a short reason in err). Never reads past n,
 * never trusts a length or an offset: every count, length and offset is
 * bounded by what is left, every string is checked to end where its length
 * says, every pointer rebuilt into the new site's own memory. The result is
 * freed by site_free. */
struct site *site_wire_read(const unsigned char *p, size_t n, char *err,
	    size_t errlen);

/* wire.c: what site_wire.c and search.c (the index's own part) write and
 * read with. Writing: */
void         wire_reserve(struct buf *, size_t more);   /* room for more bytes */
void         wire_put_u8(struct buf *, uint8_t);
void         wire_put_u32(struct buf *, uint32_t);
void         wire_put_u64(struct buf *, uint64_t);
/* A u32 length, then the bytes (a C string: without its NUL). */
void         wire_put_bytes(struct buf *, const void *, size_t);
void         wire_put_str(struct buf *, const char *);
/* Reading n bytes from p: the first failure sticks (err says what, off where)
 * and every read after it gives 0 or NULL, so a reader checks w->err once at
 * the end of a record rather than after every field. */
struct wire {
	const unsigned char *p;
	size_t               n, off;
	const char          *err;
};
uint8_t      wire_u8(struct wire *);
uint32_t     wire_u32(struct wire *);
uint64_t     wire_u64(struct wire *);
/* The next len bytes, in place; NULL when fewer are left. */
const unsigned char *wire_take(struct wire *, uint64_t len);
/* A count of records of at least min bytes each; 0 (failed) when what is
 * left cannot hold that many. */
size_t       wire_count(struct wire *, uint64_t count, size_t min);
/* A u32 length and as many bytes (wire_put_bytes): in place, *len set; NULL
 * when they are not all there. */
const unsigned char *wire_bytes_at(struct wire *, size_t *len);
/* The same for a string: NULL too when a byte of it is NUL. */
const char  *wire_str_at(struct wire *, size_t *len);
/* The same, as a malloc'd C string. */
char        *wire_str(struct wire *);
/* Fails w with why (when it has not failed yet); returns NULL. */
void        *wire_fail(struct wire *, const char *why);

/* ------------------------------------------------------------------- chunk.c */
/* chunk.c: where a file stored in etcd is cut into parts, by its content
 * (so that versions share the parts an edit left alone). ends[i]: the end of
 * part i; the number of parts, or 0 when more than max would be needed. */
#define CHUNK_PART_MAX (512u << 10)
size_t chunk_avg(size_t n);
size_t chunk_cut(const unsigned char *p, size_t n, size_t *ends, size_t max);

/* ---------------------------------------------------------------- editchan.c */
/*
 * A frame between a worker and the master: a request (code CHAN_STORE or
 * CHAN_READ; parts: path, mime, body) or its reply (code: the Gemini status;
 * parts: meta, body). fp: the editor's certificate SHA-256, 64 hex digits.
 */
#define CHAN_PARTS 3
/* The largest part of a frame: an upload (server.max_upload, at most this),
 * or a stored dataset sent back to an editor. */
#define CHAN_MAX   (256u * 1024 * 1024)
/* CHAN_AUDIT: editing process to store process (etcd), an audit record
 * (parts: path, the line). */
enum { CHAN_STORE = 1, CHAN_READ = 2, CHAN_AUDIT = 3 };
struct chan_msg {
	uint32_t             id, code;
	char                 fp[65];
	const unsigned char *part[CHAN_PARTS];
	size_t               n[CHAN_PARTS];
};
void  chan_pack(struct buf *out, const struct chan_msg *);
/* A whole frame at the start of in (parts point into it; *used: its bytes):
 * 1; 0: more bytes needed; -1: not a frame, or a part above max bytes. */
int   chan_unpack(const unsigned char *in, size_t len, size_t max,
	    struct chan_msg *, size_t *used);
void  chan_consume(struct buf *in, size_t used);

/* --------------------------------------------------------- protocol replies */
/* What a front end answers: bytes to send, usually pointing into the site. */
struct reply {
	const unsigned char *data;
	size_t               len;
	unsigned char       *owned;   /* free() after sending, or NULL */
	int                  status;  /* Gemini status; Spartan: its digit; Gopher,
					* Nex: 0 served, 3 error */
	int                  edit;    /* no reply yet: an editing request for titan.c */
};

/* req/len: the bytes read so far, up to and including the first LF, or all of
 * them when the buffer filled (or the client closed) without one. */
void  gemini_respond(const struct site *, const char *sni,
	    const unsigned char *req, size_t len, struct reply *out);
void  gopher_respond(const struct site *,
	    const unsigned char *req, size_t len, struct reply *out);
void  reply_free(struct reply *);
/* spartan.c: req/len: the request line (through its LF) and the data block,
 * as much of it as came (conn.c reads until spartan_need is met or the client
 * stops). */
void  spartan_respond(const struct site *,
	    const unsigned char *req, size_t len, struct reply *out);
/* How many bytes the request starting at req (the line through its LF, len
 * bytes) takes with its data block; -1 when the line is not one (the reply
 * then says why). */
long  spartan_need(const unsigned char *req, size_t len);
/* nex.c: req/len as for Gopher. */
void  nex_respond(const struct site *,
	    const unsigned char *req, size_t len, struct reply *out);

/* -------------------------------------------------------------------- titan.c */
/* An editing request a worker holds: checked, then (an upload) its body read. */
struct edit_req {
	int            op;        /* CHAN_STORE (titan://) or CHAN_READ (gemini://) */
	char           fp[65];    /* the editor's certificate SHA-256 */
	char          *path;      /* decoded and normalised */
	char          *mime;      /* the upload's ;mime=, "" if none */
	size_t         size, got; /* the upload's ;size=, and the bytes read */
	unsigned char *body;      /* size bytes */
};
/* What titan_request checks after the certificate: the URL's Titan
 * parameters and the path (pure, for the fuzzer too); e->fp is left empty. */
int   titan_parse(const struct config *, const unsigned char *req, size_t len,
	    struct edit_req *e, struct reply *out);
/* The frame that carries e to the master. */
void  titan_send(const struct edit_req *e, uint32_t id, struct buf *out);
/* The master's reply frame as the client's reply. */
void  titan_reply(const struct chan_msg *, struct reply *out);
void  edit_req_free(struct edit_req *);

/* -------------------------------------------------------------------- url */
/* Percent-decodes s once ('+' stays '+'). 0 with a malloc'd NUL-terminated *out
 * of *len bytes; -1 when the result would hold a NUL byte; -2 out of memory. */
int     url_decode(const char *s, char **out, size_t *len);
/* Resolves ".", ".." and empty segments of a decoded path (RFC 3986 5.2.4; ".."
 * at the root stays there). The result starts with "/" and keeps a trailing "/";
 * out must hold len + 2 bytes. Returns the result's length (NUL-terminated). */
size_t  url_normalise_path(const char *path, size_t len, char *out);
/* Percent-encodes a decoded path for a URL (RFC 3986 pchar and "/"); writes at
 * most cap bytes including the NUL. Returns the length, or -1 when cap is short. */
int     url_encode_path(const char *path, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------------ proxy */
struct sockaddr_storage;
/* PROXY protocol v1 and v2 header at the start of buf (pure; no I/O).
 * Returns the header's length when buf holds a complete valid header, with the
 * client's address in *src (src->ss_family AF_UNSPEC for v2 LOCAL or v1
 * UNKNOWN: keep the connection's own address); 0 when more bytes are needed;
 * -1 when the bytes are not a valid header. Never reads past len. */
long  proxy_parse(const unsigned char *buf, size_t len, struct sockaddr_storage *src);
/* The most bytes a header we accept can take (v1: 107; v2: 16 + 216). */
#define PROXY_MAX_HEADER 232

#endif

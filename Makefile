# kilnet: a Gemini and Gopher server for the Keep it Local Network.
# make          build ./kilnet
# make run      install missing packages, build, serve the default dataset on loopback
# make test     the whole test suite, against the normal and the ASan/UBSan build
# make bench    benchmarks (not part of make test)
# make fuzz     each libFuzzer target (fuzz/) for FUZZ_SECONDS (default 60); needs clang
# make install  the binary, man pages, example config and systemd unit under PREFIX
#               (and DESTDIR); make uninstall removes them

CC       ?= cc
PKGS      = libevent libevent_openssl openssl libconfig libseccomp
# Debian packages the build, the tests and make run need.
DEB_PKGS  = gcc make pkg-config libevent-dev libssl-dev libconfig-dev libseccomp-dev \
            libunistring-dev openssl curl lynx procps iproute2 mandoc haproxy \
            libxml2-utils amfora tmux
PREFIX   ?= /usr/local
# Where make install puts things. The installed binary reads
# SYSCONFDIR/kilnet/kilnet.conf by default: /etc for PREFIX=/usr, else PREFIX/etc.
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share/kilnet
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
STATEDIR   ?= /var/lib/kilnet
INSTALL    ?= install
# The installed binary is built apart, with its own default config path, so
# that ./kilnet (make run, make test) keeps conf/kilnet.conf.
IBUILD     ?= build/install
DEFAULT_CONF ?= conf/kilnet.conf

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE \
            -DKILNET_DEFAULT_CONF='"$(DEFAULT_CONF)"' $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lunistring -pthread
ASAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(wildcard src/*.c)
OBJS     := $(SRCS:src/%.c=build/%.o)
AOBJS    := $(SRCS:src/%.c=build/asan/%.o)
TESTBINS := $(patsubst tests/%.c,tests/bin/%,$(wildcard tests/*.c)) bench/bin/loadgen bench/bin/floor

# Fuzz targets (fuzz/fuzz_NAME.c). make test replays their corpora through
# fuzz/replay.c, built with the ASan flags and the normal compiler.
FUZZ_TARGETS := gemini gopher proxy config escape titan wire
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_SRCS    := $(filter-out src/main.c,$(SRCS))
FUZZ_CFLAGS   = -g -O1 -std=c11 -Wall -Wextra -D_GNU_SOURCE -DKILNET_ROOT='"$(CURDIR)"' \
                $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
REPLAYBINS   := $(FUZZ_TARGETS:%=fuzz/bin/replay_%)
# libconfig 1.5 leaks a token on some syntax errors (fuzz/lsan.supp).
FUZZ_LSAN     = LSAN_OPTIONS=suppressions=$(CURDIR)/fuzz/lsan.supp:print_suppressions=0

.PHONY: all deps asan test test-quick run bench clean fuzz

all: kilnet

kilnet: $(OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(LDLIBS)

kilnet-asan: $(AOBJS)
	$(CC) $(CFLAGS) $(ASAN) $(LDFLAGS) -o $@ $(AOBJS) $(LDLIBS)

asan: kilnet-asan

build/%.o: src/%.c $(wildcard src/*.h) | build
	$(CC) $(CFLAGS) -c -o $@ $<

build/asan/%.o: src/%.c $(wildcard src/*.h) | build
	$(CC) $(CFLAGS) $(ASAN) -c -o $@ $<

build:
	mkdir -p build/asan

tests/bin/%: tests/%.c $(wildcard tests/*.h)
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

# tests/wire_roundtrip.c calls the modules themselves: it links the server's
# objects, the ASan build's too for make test's ASan run (tests/test_wire.sh).
TESTBINS += tests/bin/wire_roundtrip-asan
tests/bin/wire_roundtrip: tests/wire_roundtrip.c $(filter-out build/main.o,$(OBJS))
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

tests/bin/wire_roundtrip-asan: tests/wire_roundtrip.c $(filter-out build/asan/main.o,$(AOBJS))
	@mkdir -p tests/bin
	$(CC) $(CFLAGS) $(ASAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Installs only what is missing; apt-get update runs only when something is.
deps:
	@missing=; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Both builds run the whole suite, side by side: the ASan/UBSan run catches memory
# errors the plain run cannot see. tests/run.sh prints the normal run as it goes,
# then the ASan run's output, then one line "N passed, N failed" for both. Each run
# has JOBS tests going at once (default 4; make test JOBS=1 for one at a time).
test: deps
	$(MAKE) kilnet kilnet-asan $(TESTBINS) $(REPLAYBINS)
	KILNET="./kilnet ./kilnet-asan" bash tests/run.sh

# One pass against the normal build, for quick iteration.
test-quick: kilnet $(TESTBINS) $(REPLAYBINS)
	KILNET=./kilnet bash tests/run.sh $(T)

run: deps
	$(MAKE) kilnet
	@echo "kilnet: serving gemini://localhost:1965/ and gopher://localhost:7070/ (Ctrl-C stops)"
	./kilnet -c $(DEFAULT_CONF) --hostname localhost \
	  --gemini 127.0.0.1:1965 --gopher 127.0.0.1:7070

bench: deps
	-$(MAKE) kilnet
	$(MAKE) bench/bin/loadgen bench/bin/floor
	bash bench/run.sh

# The bench's load generator and floor server (bench/): OpenSSL, and libevent
# for the floor's --bufferevent mode.
bench/bin/floor: LDLIBS_BENCH = $(shell pkg-config --libs libevent libevent_openssl)
bench/bin/%: bench/%.c
	@mkdir -p bench/bin
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -D_GNU_SOURCE $(shell pkg-config --cflags openssl) \
	  -o $@ $< $(LDLIBS_BENCH) $(shell pkg-config --libs openssl)

# --------------------------------------------------------------- install
.PHONY: install uninstall FORCE

IOBJS      := $(SRCS:src/%.c=$(IBUILD)/%.o)
INSTALL_CONF = $(SYSCONFDIR)/kilnet/kilnet.conf
# The paths written in kilnet.8, kilnet.conf.5 and contrib/kilnet.service are
# those of PREFIX=/usr; these rewrite them for the prefix installed to.
SED_PATHS  = sed -e 's|/usr/sbin/kilnet|$(SBINDIR)/kilnet|g' \
	       -e 's|/etc/kilnet|$(SYSCONFDIR)/kilnet|g' \
	       -e 's|/usr/share/kilnet|$(DATADIR)|g' \
	       -e 's|/usr/lib/systemd/system/kilnet.service|$(UNITDIR)/kilnet.service|g' \
	       -e 's|/var/lib/kilnet|$(STATEDIR)|g'

$(IBUILD)/%.o: DEFAULT_CONF = $(INSTALL_CONF)
$(IBUILD)/kilnet: DEFAULT_CONF = $(INSTALL_CONF)
$(IBUILD)/%.o: src/%.c $(wildcard src/*.h) $(IBUILD)/conf-path
	$(CC) $(CFLAGS) -c -o $@ $<

$(IBUILD)/kilnet: $(IOBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(IOBJS) $(LDLIBS)

# Rewritten only when the path changes, so objects rebuild only then.
$(IBUILD)/conf-path: FORCE
	@mkdir -p $(IBUILD)
	@echo '$(INSTALL_CONF)' | cmp -s - $@ || echo '$(INSTALL_CONF)' >$@

# The example config: certificates in the systemd unit's state folder, the
# capsule beside the config (copy the whole folder to SYSCONFDIR/kilnet/).
$(IBUILD)/kilnet.conf: conf/kilnet.conf FORCE
	@mkdir -p $(IBUILD)
	sed -e 's|^\( *cert_dir *= *\).*|\1"$(STATEDIR)";|' \
	    -e 's|^\( *capsule *= *\).*|\1"capsule";|' \
	    -e 's|^\( *state_dir *= *\).*|\1"$(STATEDIR)";|' \
	    -e 's|conf/kilnet.conf|$(INSTALL_CONF)|g' \
	    -e 's| This repo keeps$$||' \
	    -e 's|^\( *#\) both at its top level, one folder up\.$$|\1 Installed: certificates in the systemd unit'"'"'s state folder.|' \
	    conf/kilnet.conf >$@

install: $(IBUILD)/kilnet $(IBUILD)/kilnet.conf
	$(INSTALL) -d "$(DESTDIR)$(SBINDIR)" "$(DESTDIR)$(MANDIR)/man8" \
	    "$(DESTDIR)$(MANDIR)/man5" "$(DESTDIR)$(DATADIR)/capsule" \
	    "$(DESTDIR)$(UNITDIR)"
	$(INSTALL) -m 0755 $(IBUILD)/kilnet "$(DESTDIR)$(SBINDIR)/kilnet"
	$(SED_PATHS) kilnet.8 >$(IBUILD)/kilnet.8
	$(SED_PATHS) kilnet.conf.5 >$(IBUILD)/kilnet.conf.5
	$(SED_PATHS) contrib/kilnet.service >$(IBUILD)/kilnet.service
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.8 "$(DESTDIR)$(MANDIR)/man8/kilnet.8"
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.conf.5 "$(DESTDIR)$(MANDIR)/man5/kilnet.conf.5"
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.service "$(DESTDIR)$(UNITDIR)/kilnet.service"
	$(INSTALL) -m 0644 $(IBUILD)/kilnet.conf "$(DESTDIR)$(DATADIR)/kilnet.conf"
	$(INSTALL) -m 0644 conf/network.conf "$(DESTDIR)$(DATADIR)/network.conf"
	find capsule -type f | while IFS= read -r f; do \
	  $(INSTALL) -D -m 0644 "$$f" "$(DESTDIR)$(DATADIR)/$$f" || exit 1; \
	done

# Removes what install put there: DATADIR is kilnet's own, the rest file by file.
uninstall:
	rm -f "$(DESTDIR)$(SBINDIR)/kilnet" "$(DESTDIR)$(MANDIR)/man8/kilnet.8" \
	    "$(DESTDIR)$(MANDIR)/man5/kilnet.conf.5" "$(DESTDIR)$(UNITDIR)/kilnet.service"
	rm -rf "$(DESTDIR)$(DATADIR)"

fuzz/bin/replay_%: fuzz/fuzz_%.c fuzz/replay.c fuzz/fuzz.h $(filter-out build/asan/main.o,$(AOBJS))
	@mkdir -p fuzz/bin
	$(CC) $(CFLAGS) $(ASAN) -DKILNET_ROOT='"$(CURDIR)"' $(LDFLAGS) -o $@ fuzz/fuzz_$*.c \
	  fuzz/replay.c $(filter-out build/asan/main.o,$(AOBJS)) $(LDLIBS)

fuzz/bin/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz.h $(FUZZ_SRCS) src/kilnet.h
	@mkdir -p fuzz/bin
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(LDFLAGS) -o $@ fuzz/fuzz_$*.c $(FUZZ_SRCS) $(LDLIBS)

# Each target runs FUZZ_SECONDS from its seed corpus (fuzz/corpus/NAME/); new
# inputs go to fuzz/work/NAME/ (not kept), a crash is written into the seed
# corpus as crash-*, where make test replays it from then on. Every target runs
# even when one fails; make fuzz fails if any did.
fuzz:
	@$(MAKE) --no-print-directory deps DEB_PKGS="clang libclang-rt-dev"
	$(MAKE) $(FUZZ_TARGETS:%=fuzz/bin/fuzz_%)
	@failed=; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/work/$$t; \
	  echo "make fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_LSAN) ./fuzz/bin/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 -artifact_prefix=fuzz/corpus/$$t/ \
	    fuzz/work/$$t fuzz/corpus/$$t >fuzz/work/$$t.log 2>&1 || failed="$$failed $$t"; \
	  tail -n 3 fuzz/work/$$t.log; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: FAILED:$$failed (see fuzz/work/*.log)"; exit 1; fi; \
	echo "make fuzz: every target ran clean for $(FUZZ_SECONDS) s"

clean:
	rm -rf build kilnet kilnet-asan tests/bin bench/bin fuzz/bin fuzz/work

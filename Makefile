# iotop_ext: test, benchmark, install.
PREFIX ?= /usr/local
DESTDIR ?=
PYTHON ?= python3
# Every CPython 3.6-3.13 found on PATH (pyenv: see README); python3 alone otherwise.
PYTHONS := $(foreach v,3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13,$(shell command -v python$(v) 2>/dev/null))

.PHONY: test bench install uninstall

test:
	@pys="$(PYTHONS)"; [ -n "$$pys" ] || pys="$(PYTHON)"; status=0; \
	for py in $$pys; do \
		echo "== $$py ($$($$py -c 'import platform; print(platform.python_version())'))"; \
		$$py test_iotop_ext.py || status=1; \
	done; exit $$status

# make bench BENCH_THREADS="10000 30000": per-thread cost at 30,000 against 10,000.
BENCH_THREADS ?= 10000
BENCH_ROUNDS ?= 5

bench:
	$(PYTHON) test_iotop_ext.py --bench "$(BENCH_THREADS)" "$(BENCH_ROUNDS)"

install:
	install -D -m 0755 iotop_ext.py $(DESTDIR)$(PREFIX)/sbin/iotop_ext

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/iotop_ext

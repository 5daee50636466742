/*
 * Corpus replay: runs a fuzz target's LLVMFuzzerTestOneInput over every file
 * in the directories (or single files) named on the command line, so the
 * corpus and every crash reproducer in it is a regression test in the normal
 * gcc build, without libFuzzer. A target reports problems by crashing (or by
 * a sanitizer or valgrind doing so), so a file that returns is a pass; the
 * runner ends with the usual "N passed, N failed" line.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest corpus file replayed; the corpora hold a few KiB per file. */
#define REPLAY_MAX_FILE_BYTES (16u << 20)

static int replay_passed;
static int replay_failed;

/*
 * Read `path` whole into an exactly-sized heap buffer (so ASan and valgrind
 * catch a target reading one byte past the input) and run the target on it.
 * A file that cannot be read counts as a failure, so a broken corpus is never
 * silently skipped.
 */
static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "  FAIL %s: cannot open\n", path);
        replay_failed++;
        return;
    }
    uint8_t *data = NULL;
    size_t size = 0;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 ||
        (unsigned long long)st.st_size > REPLAY_MAX_FILE_BYTES) {
        fprintf(stderr, "  FAIL %s: cannot stat or too large\n", path);
        replay_failed++;
        fclose(f);
        return;
    }
    size = (size_t)st.st_size;
    data = malloc(size ? size : 1);
    if (!data || fread(data, 1, size, f) != size) {
        fprintf(stderr, "  FAIL %s: cannot read\n", path);
        replay_failed++;
        free(data);
        fclose(f);
        return;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(data, size);
    free(data);
    replay_passed++;
}

/* Comparison for qsort over file names, so the replay order is stable. */
static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Replay every regular file directly inside `dir`, in name order (hidden
 * files skipped). An argument that is a file is replayed by itself.
 */
static void replay_path(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(stderr, "  FAIL %s: no such file or directory\n", dir);
        replay_failed++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        replay_file(dir);
        return;
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "  FAIL %s: cannot open directory\n", dir);
        replay_failed++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            size_t new_cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, new_cap * sizeof *grown);
            if (!grown)
                break;
            names = grown;
            cap = new_cap;
        }
        size_t len = strlen(dir) + 1 + strlen(e->d_name) + 1;
        names[n] = malloc(len);
        if (!names[n])
            break;
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            replay_file(names[i]);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        replay_path(argv[i]);
    if (replay_passed + replay_failed == 0) {
        fprintf(stderr, "  FAIL: no corpus files\n");
        replay_failed++;
    }
    printf("%d passed, %d failed\n", replay_passed, replay_failed);
    return replay_failed ? 1 : 0;
}

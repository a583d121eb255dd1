/* `oddone generate --contact-sheet DATASET -o FILE.png`: one picture of
 * 16 scenes of a dataset, to look at what a generator run made. */
#ifndef ODDONE_CLI_CONTACT_SHEET_H
#define ODDONE_CLI_CONTACT_SHEET_H

/* Writes a 4 x 4 grid of the first view of 16 scenes, each labelled with
 * its split and its anomaly kinds ("normal" when it has none), the odd
 * objects outlined in red. Scenes are taken from the split lists in turn,
 * preferring labels not yet shown. dataset is a dataset folder, or a
 * folder of datasets (each with manifest.json) such as bench-v1's.
 * Returns the exit status (0, or 1 after printing the error). */
int od_cli_contact_sheet(const char *dataset, const char *output, int quiet);

#endif

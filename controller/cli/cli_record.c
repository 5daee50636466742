/* `cpscale record`: a target's history from Prometheus (until its own command file lands). */
#include "commands.h"
#include "record.h"

int cli_record(int argc, char **argv)
{
    return cps_record_main(argc, argv);
}

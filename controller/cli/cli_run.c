/* `cpscale run`: the controller (until its own command file lands). */
#include "commands.h"
#include "controller.h"

int cli_run(int argc, char **argv)
{
    return cps_cmd_run(argc, argv);
}

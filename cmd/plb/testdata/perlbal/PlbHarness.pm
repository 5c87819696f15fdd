# PlbHarness: makes Perlbal 1.80's test files start a program as the server
# under test instead of Perlbal. ./run loads it into every test file
# (PERL5OPT=-MPlbHarness) and names the program in PERLBAL_T_SERVER.
#
# Perlbal::Test (lib/Perlbal/Test.pm in Perlbal's source) starts a server
# thus: start_server($conf) takes a management port, forks, and the child
# calls _start_perbal_server($conf, $port), which adds a management service
# on 127.0.0.1:$port to $conf and runs Perlbal inside the child. The parent
# connects to that port, sends "proc" and wants the child's pid in the
# "pid: N" line. When the test ends, it sends "shutdown" to the last server
# it started; earlier Perlbal children ended with their parent.
#
# Here:
#  - the child writes that same configuration to a file and execs
#    "$PERLBAL_T_SERVER --config=FILE" (exec keeps its pid: "proc" still
#    matches), its output going to a file next to the configuration;
#  - every server started is remembered, and those the test does not shut
#    down itself get SIGTERM when it ends;
#  - a listening socket the harness opens by port alone (its free-port probe,
#    Perlbal::Test::WebServer's backends) binds to 127.0.0.1, the address the
#    tests' configurations use, not to every address.
package PlbHarness;
use strict;
use warnings;

# PERL5OPT reaches every Perl program: prove, and the server if it is
# Perlbal. Only a test file is changed.
return 1 unless $0 =~ /\.t\z/ && $ENV{PERLBAL_T_SERVER};

use IO::Socket::INET;
require Perlbal::Test;

my @servers;    # pids of the servers this test started

sub logdir { $ENV{PERLBAL_T_LOGS} || $ENV{TMPDIR} || '/tmp' }

{
    no warnings 'redefine';

    my $inet_new = \&IO::Socket::INET::new;
    *IO::Socket::INET::new = sub {
        my ($class, @args) = @_;
        if (@args && @args % 2 == 0) {
            my %opt = @args;
            if (defined $opt{LocalPort} && !grep { defined $opt{$_} } qw(LocalAddr LocalHost)) {
                @args = (%opt, LocalAddr => '127.0.0.1');
            }
        }
        return $inet_new->($class, @args);
    };

    # Runs in the forked child; never returns.
    *Perlbal::Test::_start_perbal_server = sub {
        my ($conf, $mgmt_port) = @_;
        my $file = logdir() . "/server-$$.conf";
        open(my $out, '>', $file) or die "PlbHarness: $file: $!";
        print $out (defined $conf ? $conf : ''), <<"END_MGMT";

CREATE SERVICE mgmt
SET mgmt.listen = 127.0.0.1:$mgmt_port
SET mgmt.role = management
ENABLE mgmt
END_MGMT
        close($out) or die "PlbHarness: $file: $!";
        my $log = logdir() . "/server-$$.log";
        open(STDOUT, '>>', $log) or die "PlbHarness: $log: $!";
        open(STDERR, '>&', \*STDOUT) or die "PlbHarness: stderr: $!";
        delete $ENV{PERL5OPT};
        chdir($ENV{PERLBAL_T_SERVER_DIR} || '/');
        exec($ENV{PERLBAL_T_SERVER}, "--config=$file")
            or die "PlbHarness: exec $ENV{PERLBAL_T_SERVER}: $!";
    };

    my $start_server = \&Perlbal::Test::start_server;
    *Perlbal::Test::start_server = sub {
        my @r = wantarray ? $start_server->(@_) : scalar $start_server->(@_);
        push @servers, $Perlbal::Test::to_kill if $Perlbal::Test::to_kill;
        return wantarray ? @r : $r[0];
    };
}

# Runs before Perlbal::Test's own END (compiled earlier), which shuts the
# last server down through its management port: leave that one to it.
END {
    local $SIG{PIPE} = 'IGNORE';
    my $last = $Perlbal::Test::to_kill || 0;
    my @others = grep { $_ != $last } @servers;
    kill 'TERM', @others if @others;
}

1;

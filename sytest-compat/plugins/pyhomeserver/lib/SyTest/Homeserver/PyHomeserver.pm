# SyTest driver for this project's homeserver: one test homeserver.
#
# Each homeserver gets a directory of its own (hs_dir) with a generated config, a TLS
# certificate signed by SyTest's test CA, its own embedded PostgreSQL (created fresh at every
# start) and its log (homeserver.log). It is started with `python -m homeserver --config FILE`
# and counts as ready when its TLS port accepts connections (the server binds it only once its
# database is migrated). SyTest stops it with SIGINT.

use strict;
use warnings;

package SyTest::Homeserver::PyHomeserver;
use base qw( SyTest::Homeserver );

use Cwd qw( getcwd );
use File::Path qw( remove_tree );
use JSON ();

use SyTest::SSL qw( ensure_ssl_key create_ssl_cert );

# Runs the server with its output appended to the log file (SyTest replaces the environment
# and keeps only the last lines of a process's output).
my $LAUNCHER = 'import os, sys; '
   . 'log = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644); '
   . 'os.dup2(log, 1); os.dup2(log, 2); '
   . 'os.execv(sys.executable, [sys.executable, "-m", "homeserver", "--config", sys.argv[1], *sys.argv[3:]])';

sub _init
{
   my $self = shift;
   my ( $args ) = @_;

   $self->{$_} = delete $args->{$_} for qw( project_dir python impl_name extra_args );
   # SyTest computes hs_dir with abs_path, which is undef for a directory that does not exist yet.
   defined $args->{hs_dir} or die "No homeserver directory: create WORK_DIR/server-N before the run\n";

   $self->SUPER::_init( $args );

   my $idx = $self->{hs_index};
   $self->{ports} = { https => main::alloc_port( "pyhomeserver[$idx]" ) };
}

sub server_name
{
   my $self = shift;
   return $self->{bind_host} . ":" . $self->{ports}{https};
}

sub federation_host
{
   my $self = shift;
   return $self->{bind_host};
}

sub federation_port
{
   my $self = shift;
   return $self->{ports}{https};
}

sub secure_port
{
   my $self = shift;
   return $self->{ports}{https};
}

sub public_baseurl
{
   my $self = shift;
   return "https://$self->{bind_host}:$self->{ports}{https}";
}

sub _config
{
   my $self = shift;

   my $hs_dir = $self->{hs_dir};
   my $sytest_dir = getcwd;
   my $generous = { per_second => 1000, burst_count => 1000 };

   return {
      server_name => $self->server_name,
      public_baseurl => $self->public_baseurl . "/",
      data_dir => "$hs_dir/data",
      media_store_path => "$hs_dir/media_store",
      log_level => ( $ENV{SYTEST_HS_LOG_LEVEL} // "INFO" ),
      listeners => [ {
         port => $self->{ports}{https},
         bind_addresses => [ $self->{bind_host} ],
         tls => JSON::true,
         tls_certificate_path => $self->{paths}{cert_file},
         tls_private_key_path => $self->{paths}{key_file},
         resources => [ { names => [ "client", "federation", "keys", "media" ] } ],
      } ],
      registration_shared_secret => "reg_secret",
      enable_registration => JSON::true,
      enable_registration_without_verification => JSON::true,
      allow_guest_access => JSON::true,
      bcrypt_rounds => 4,
      rc_login => { address => $generous, account => $generous, failed_attempts => $generous },
      rc_registration => $generous,
      rc_message => $generous,
      federation_custom_ca_list => [ "$sytest_dir/keys/ca.crt" ],
      ip_range_blacklist => [],
      url_preview_ip_range_blacklist => [],
      trusted_key_servers => [],
      allow_public_rooms_over_federation => JSON::true,
      # SyTest's push gateways present test certificates.
      use_insecure_ssl_client_just_for_testing_do_not_use => JSON::true,
      default_room_version => "10",
      federation => {
         destination_min_retry_interval => "1s",
         destination_max_retry_interval => "5s",
      },
   };
}

sub start
{
   my $self = shift;

   my $hs_dir = $self->{hs_dir};
   my $output = $self->{output};

   # Every run starts from nothing: database, media and signing key are made anew.
   remove_tree( "$hs_dir/data" ) if -d "$hs_dir/data";
   remove_tree( "$hs_dir/media_store" ) if -d "$hs_dir/media_store";

   $self->{paths}{cert_file} = "$hs_dir/tls.crt";
   $self->{paths}{key_file} = "$hs_dir/tls.key";
   ensure_ssl_key( $self->{paths}{key_file} );
   create_ssl_cert( $self->{paths}{cert_file}, $self->{paths}{key_file}, $self->{bind_host} );

   my $config_file = $self->write_yaml_file( "homeserver.yaml" => $self->_config );
   my $log_file = "$hs_dir/homeserver.log";
   my $project = $self->{project_dir};

   $output->diag( "Starting homeserver $self->{hs_index} on port $self->{ports}{https}" );

   return $self->_start_process_and_await_connectable(
      setup => [
         chdir => $project,
         env => {
            PATH => $ENV{PATH},
            PYTHONPATH => $project,
            PYTHONDONTWRITEBYTECODE => "1",
            PYTHONUNBUFFERED => "1",
            HOME => $ENV{HOME} // "/tmp",
         },
      ],
      command => [ $self->{python}, "-c", $LAUNCHER, $config_file, $log_file, @{ $self->{extra_args} } ],
      connect_host => $self->{bind_host},
      connect_port => $self->{ports}{https},
      name => "pyhomeserver-$self->{hs_index}",
   )->else( sub {
      die "Unable to start the homeserver (see $log_file): $_[0]\n";
   })->on_done( sub {
      $output->diag( "Started homeserver $self->{hs_index}" );
   });
}

1;
